"""Helpers shared by the fault and Ray tests: a small demo config, comparable rows, subprocess env.

The small config is the bundled demo with 1 spatial + 1 temporal question per video (7 model calls
per video instead of 19) and small output shards, so a build of a few videos costs seconds and still
writes several `data/` shards.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import yaml

from videosavi.builders.run.runner import BuildOptions
from videosavi.config import load_config
from videosavi.run_dir import RunDir

SMALL_LIMIT = 4  # videos per small build: 2 shards of 2 on the 2-CPU Ray cluster

SMALL_OVERRIDES: dict[str, Any] = {
    "questions": {"spatial": 1, "temporal": 1},
    "frames": {"workers": 1},
    "output": {"pairs_per_shard": 3},
}


def write_small_config(path: Path, extra: dict[str, Any] | None = None) -> Path:
    """The demo config with `SMALL_OVERRIDES` (and `extra`) applied, as a YAML file the CLI can read."""
    cfg = load_config("demo", merged(SMALL_OVERRIDES, extra or {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


def small_options(config: Path, data_root: Path, out: Path, limit: int | None = SMALL_LIMIT) -> BuildOptions:
    """The options of a small build (what `savi build --limit-videos 4 --no-progress` runs)."""
    return BuildOptions(config=config, data_root=data_root, out=out, limit_videos=limit)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def rows(run_dir: Path) -> list[dict]:
    """Finalised rows without the wall-clock field, in file order."""
    return [{k: v for k, v in r.items() if k != "created_at"} for r in RunDir(run_dir).read_pairs_table().to_pylist()]


def rows_by_pair_id(run_dir: Path) -> dict[str, dict]:
    """Rows keyed by pair_id; fails on a duplicated pair, which a resume must never produce."""
    found = rows(run_dir)
    by_id = {r["pair_id"]: r for r in found}
    assert len(by_id) == len(found), "duplicated pair_id in the output"
    return by_id


def cached_calls(run_dir: Path) -> dict[str, float]:
    """key -> creation time of every model result committed to a run's cache (read-only)."""
    db = sqlite3.connect(f"file:{Path(run_dir) / 'cache.sqlite'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT key, created FROM calls"))
    finally:
        db.close()


def subprocess_env(**extra: str) -> dict[str, str]:
    """This test session's environment (cache dir, offline hub) for a `python -m videosavi` child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOSAVI_FAULT")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def savi_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "videosavi", *args]

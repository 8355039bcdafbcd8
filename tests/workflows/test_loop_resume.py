"""Issue 23: `savi loop` killed at any step boundary resumes to the same tags.

One undisturbed loop of two iterations is the reference. A second loop is killed (SIGKILL, no cleanup)
at each step boundary in turn: after the build, between the publish's commit and its tag, after the
publish, inside training before the adapter is saved, after training, and at iteration 2's boundaries;
each time the same command is run again. The killed-and-resumed loop ends with the reference's tags,
each holding the same data (rows, derived configs, sample, prompts) and the same build.json apart from
its times. Before issue 23 the rebuilt finished run rewrote build.json and the resume was refused
("iter1 already exists with different content").
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.helpers.build_helpers import savi_command, subprocess_env, write_small_config
from videosavi.hub.store import GitStore

REPO = "org/loop"
# Each run of the disturbed loop is killed at the next of these (a failpoint counts hits per process, so
# `loop_built:1` after iteration 1 is done is iteration 2's build).
KILL_POINTS = ("loop_built:1", "publish_committed:1", "loop_published:1", "train_save:1:kill", "loop_trained:1",
               "loop_built:1", "loop_published:1", "loop_trained:1")
TIMES = ("created_at", "timings")


def _loop_config(path: Path) -> Path:
    write_small_config(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["training"] = {"max_steps": 1, "per_device_batch_size": 2, "grad_accum": 1, "lr": 1e-3, "warmup_ratio": 0.0,
                       "dataloader_workers": 0, "lora_r": 4, "lora_alpha": 4, "seed": 1}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _run_loop(config: Path, data_root: Path, base: Path, fault: str | None) -> subprocess.CompletedProcess:
    cmd = savi_command("loop", "-m", "tiny-qwen2-vl", "-d", REPO, "--iterations", "2", "-c", str(config),
                       "--data-root", str(data_root), "-o", str(base / "out"), "--store", str(base / "store"),
                       "--limit-videos", "2", "--no-progress")
    env = subprocess_env(**({"VIDEOSAVI_FAULT": fault} if fault else {}))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _revision(store: Path, tag: str) -> dict[str, object]:
    """A tag's files by path, without what differs between any two builds of the same data: each row's
    and build.json's time of making, the card's "built at" line, build.json's timings."""
    git = GitStore(store)
    sha = git.resolve(REPO, tag)
    files: dict[str, object] = {}
    for path in git.list_files(REPO, sha):
        data = git.read_file(REPO, sha, path)
        assert data is not None
        if path == "build.json":
            files[path] = {k: v for k, v in json.loads(data).items() if k not in TIMES}
        elif path.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(data))
            files[path] = table.drop_columns([c for c in ("created_at",) if c in table.column_names]).to_pylist()
        elif path == "README.md":
            files[path] = [line for line in data.decode("utf-8").splitlines() if not line.startswith("| built at")]
        elif not path.endswith(".png"):  # plots: same figures, but a PNG's bytes are not promised stable
            files[path] = data
    return files


@pytest.mark.slow(seconds=95)
def test_a_loop_killed_at_every_step_boundary_resumes_to_the_same_tags(demo_root: Path, tmp_path: Path,
                                                                       videosavi_cache: str) -> None:
    config = _loop_config(tmp_path / "loop.yaml")
    base = tmp_path / "loop"  # both loops run here: iteration 2's config names iteration 1's model by its path
    reference = _run_loop(config, demo_root, base, None)
    assert reference.returncode == 0, reference.stderr[-3000:]
    want = {tag: _revision(base / "store", tag) for tag in ("iter1", "iter2")}
    shutil.rmtree(base)

    for point in KILL_POINTS:
        killed = _run_loop(config, demo_root, base, point)
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-3000:])
    final = _run_loop(config, demo_root, base, None)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "Traceback" not in final.stderr and final.stdout.count("already done") == 2, final.stdout

    assert sorted(GitStore(base / "store").tags(REPO)) == ["iter1", "iter2"]
    for tag in ("iter1", "iter2"):
        got = _revision(base / "store", tag)
        assert sorted(got) == sorted(want[tag]), tag
        assert [path for path in want[tag] if got[path] != want[tag][path]] == [], tag

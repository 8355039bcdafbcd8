"""Publishing and loading figures at the paper's scale (24K pairs per iteration by default).

    .venv/bin/python benchmarks/publish.py [--pairs 24000] [--workdir DIR] [--json PATH]

Prints seconds for: validating the run directory, assembling the revision (swift shards, card,
plots), the first publish into a fresh store, a no-op re-publish, starting the hub server, and loading
the revision back with `videosavi.load_revision` (through the server and from the store path) and with
stock `datasets.load_dataset` through the server (in a fresh interpreter; the time that interpreter needs just to
import `datasets` is measured separately). Sizes: the pairs' parquet shards, the whole revision
(pairs + swift shards + manifest + card + plots) and the store on disk. Rows come from
tests/helpers/factories.py (synthetic, valid).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.helpers.factories

LOAD_DATASET = "stock datasets.load_dataset through the hub server"
IMPORT_DATASETS = "fresh interpreter: import datasets only"
FIRST_PUBLISH = "publish_run, first (validate..push)"


@dataclass
class PublishFigures:
    pairs: int
    shards: int
    steps: dict[str, float] = field(default_factory=dict)  # label -> seconds, in the order run
    data_parquet_bytes: int = 0  # data/train-*.parquet: the pairs
    revision_bytes: int = 0  # every file of the published revision
    revision_parquet_bytes: int = 0  # data/ + swift/ + videos.parquet
    store_bytes: int = 0  # the git store on disk after two publishes

    def to_json(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "shards": self.shards, "steps": {k: round(v, 3) for k, v in self.steps.items()},
                "data_parquet_bytes": self.data_parquet_bytes, "revision_bytes": self.revision_bytes,
                "revision_parquet_bytes": self.revision_parquet_bytes, "store_bytes": self.store_bytes}


def _bytes(paths: Any) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def measure_publish(pairs: int = 24_000, pairs_per_shard: int = 5_000, workdir: Path | None = None,
                    log: Callable[[str], None] = print) -> PublishFigures:
    """Write, validate, publish and load `pairs` synthetic pairs; a temporary workdir is removed after."""
    import huggingface_hub.constants

    from tests.helpers.factories import make_pairs, write_run_dir
    from videosavi.hub.load import load_revision
    from videosavi.hub.publish import publish_run
    from videosavi.hub.revision_files import assemble_revision
    from videosavi.hub.serve import HubServer
    from videosavi.hub.validate import validate_run_dir

    huggingface_hub.constants.HF_HUB_OFFLINE = False
    work = workdir or Path(tempfile.mkdtemp(prefix="videosavi-bench-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        steps[label] = time.perf_counter() - t0
        log(f"  {label:<44} {steps[label]:8.2f} s")
        return out

    try:
        n_videos = max(1, pairs // 6)
        rows = timed(f"make {n_videos * 6} pairs (factories)", lambda: make_pairs(n_videos=n_videos))
        run = timed("write the run directory", lambda: write_run_dir(work / "iter1", rows, iteration=1,
                                                                     pairs_per_shard=pairs_per_shard))
        validated = timed("validate (schema + every row)", lambda: validate_run_dir(run.path))
        staging = work / "staging"
        timed("assemble (swift, card, plots)", lambda: assemble_revision(validated, staging, repo="bench/vs",
                                                                         tag="iter1"))
        store = work / "store"
        timed(FIRST_PUBLISH, lambda: publish_run(run.path, "bench/vs", store=store))
        res = timed("publish_run, identical again (no-op)", lambda: publish_run(run.path, "bench/vs", store=store))
        if not res.noop:
            raise RuntimeError("re-publishing identical files was not a no-op")
        timed("load_revision from the store path", lambda: load_revision("bench/vs", "iter1", store=store,
                                                                         cache_dir=work / "c-store"))
        server = timed("start the hub server (HubServer)", lambda: HubServer(store).start())
        try:
            ds = timed("load_revision through the hub server", lambda: load_revision("bench/vs", "iter1",
                                                                           endpoint=server.endpoint,
                                                                           cache_dir=work / "c-server"))
            if ds.num_rows != len(rows):
                raise RuntimeError(f"loaded {ds.num_rows} rows, published {len(rows)}")
            env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "0",
                   "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
            timed(IMPORT_DATASETS, lambda: subprocess.run([sys.executable, "-c", "import datasets"], env=env,
                                                          check=True, capture_output=True))
            code = ("import datasets; "
                    "print(datasets.load_dataset('bench/vs', revision='iter1', split='train').num_rows)")
            out = timed(LOAD_DATASET, lambda: subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                                             capture_output=True, text=True))
            if out.stdout.strip().splitlines()[-1] != str(len(rows)):
                raise RuntimeError(f"load_dataset returned {out.stdout.strip()!r}, expected {len(rows)} rows")
        finally:
            server.stop()
        figures = PublishFigures(
            pairs=len(rows), shards=len(list((run.path / "data").glob("*.parquet"))), steps=steps,
            data_parquet_bytes=_bytes((run.path / "data").glob("*.parquet")),
            revision_bytes=_bytes(staging.rglob("*")),
            revision_parquet_bytes=_bytes(staging.rglob("*.parquet")),
            store_bytes=_bytes(store.rglob("*")),
        )
        log(f"  {'pairs parquet (data/)':<44} {figures.data_parquet_bytes / 1e6:8.2f} MB")
        log(f"  {'store size':<44} {figures.store_bytes / 1e6:8.2f} MB")
        return figures
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=24_000)
    parser.add_argument("--pairs-per-shard", type=int, default=5_000)
    parser.add_argument("--workdir", type=Path, default=None, help="keep everything here (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    figures = measure_publish(args.pairs, args.pairs_per_shard, args.workdir)
    if args.json:
        args.json.write_text(json.dumps(figures.to_json(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

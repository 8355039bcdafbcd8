"""Publishing and loading figures at the paper's scale (24K pairs per iteration by default).

    .venv/bin/python benchmarks/publish.py [--pairs 24000] [--workdir DIR]

Prints seconds for: validating the run directory, assembling the revision (swift shards, card,
plots), the first publish into a fresh store, a no-op re-publish, starting olah, and loading the
revision back with `videosavi.load_revision` (through olah and from the store path) and with stock
`datasets.load_dataset` through olah. Rows come from tests/factories.py (synthetic, valid).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(label: str, fn, results: dict[str, float]):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    results[label] = time.perf_counter() - t0
    print(f"{label:<44} {results[label]:8.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=24_000)
    parser.add_argument("--pairs-per-shard", type=int, default=5_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import huggingface_hub.constants

    from tests.factories import make_pairs, write_run_dir
    from videosavi.hub.load import load_revision
    from videosavi.hub.publish import publish_run
    from videosavi.hub.revision_files import assemble_revision
    from videosavi.hub.serve import HubServer
    from videosavi.hub.validate import validate_run_dir

    huggingface_hub.constants.HF_HUB_OFFLINE = False
    work = args.workdir or Path(tempfile.mkdtemp(prefix="videosavi-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, float] = {}
    n_videos = max(1, args.pairs // 6)
    pairs = _timed(f"make {n_videos * 6} pairs (factories)", lambda: make_pairs(n_videos=n_videos), results)
    run = _timed("write the run directory", lambda: write_run_dir(work / "iter1", pairs, iteration=1,
                                                                  pairs_per_shard=args.pairs_per_shard), results)
    validated = _timed("validate (schema + every row)", lambda: validate_run_dir(run.path), results)
    _timed("assemble (swift, card, plots)", lambda: assemble_revision(validated, work / "staging", repo="bench/vs",
                                                                      tag="iter1"), results)
    store = work / "store"
    _timed("publish_run, first (validate..push)", lambda: publish_run(run.path, "bench/vs", store=store,
                                                                      progress=False), results)
    res = _timed("publish_run, identical again (no-op)", lambda: publish_run(run.path, "bench/vs", store=store,
                                                                             progress=False), results)
    assert res.noop
    _timed("load_revision from the store path", lambda: load_revision("bench/vs", "iter1", store=store,
                                                                      cache_dir=work / "c-store"), results)
    server = _timed("start olah (HubServer)", lambda: HubServer(store).start(), results)
    try:
        ds = _timed("load_revision through olah", lambda: load_revision("bench/vs", "iter1", endpoint=server.endpoint,
                                                                        cache_dir=work / "c-olah"), results)
        assert ds.num_rows == len(pairs)
        env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        code = "import datasets; print(datasets.load_dataset('bench/vs', revision='iter1', split='train').num_rows)"
        _timed("stock datasets.load_dataset through olah", lambda: subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True), results)
    finally:
        server.stop()
    size = sum(p.stat().st_size for p in (store).rglob("*") if p.is_file())
    print(f"{'store size':<44} {size / 1e6:8.2f} MB")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()

"""What the hub server costs per request, and what byte ranges buy: route latency and shard reads.

    .venv/bin/python benchmarks/hub_server.py [--shard-mb 8] [--requests 50] [--workdir DIR]

Publishes two small iterations and one run with a single shard of about `--shard-mb` MB (synthetic
pairs from tests/helpers/factories.py with a hard-to-compress critique), starts `HubServer`, and prints:

- the median latency of each read route huggingface_hub and `datasets` call (repository info with
  file metadata, refs, commits, a recursive tree, paths-info, a file HEAD and a small file GET),
  every one answered from git by `HubServer`;
- a 1 MB range GET from the shard, first (the blob is copied out of git once) and warm;
- stock `datasets.load_dataset(..., streaming=True)` over every row of the shard and
  `pandas.read_parquet("hf://...")`, each in a fresh interpreter (includes importing datasets).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.helpers.factories

REPO, BIG = "bench/hub", "bench/hub-big"

_STOCK = """
import sys, time
t0 = time.perf_counter()
import datasets, pandas as pd
t1 = time.perf_counter()
mode, repo, path = sys.argv[1:4]
if mode == "stream":
    n = sum(1 for _ in datasets.load_dataset(repo, revision="iter1", split="train", streaming=True))
else:
    n = len(pd.read_parquet(f"hf://datasets/{repo}@iter1/{path}"))
print(n, t1 - t0, time.perf_counter() - t1)
"""


def _get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> float:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        err.read()
    return time.perf_counter() - t0


def _median_ms(url: str, n: int, method: str = "GET") -> float:
    _get(url, method)  # warm: caches, connections, imports on the server side
    return statistics.median(_get(url, method) for _ in range(n)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard-mb", type=float, default=8.0)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    from tests.helpers.factories import make_pairs, write_run_dir
    from videosavi.hub.publish import publish_run
    from videosavi.hub.serve import HubServer

    work = args.workdir or Path(tempfile.mkdtemp(prefix="videosavi-bench-hub-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        store = work / "store"
        for it in (1, 2):
            run = write_run_dir(work / f"iter{it}", make_pairs(n_videos=3, iteration=it, seed=it), iteration=it)
            publish_run(run.path, REPO, store=store)
        rng = random.Random(0)
        n_videos = max(1, round(args.shard_mb * 1e6 / 6 / 40_000))
        pairs = [p.model_copy(update={"critique": base64.b64encode(rng.randbytes(30_000)).decode()})
                 for p in make_pairs(n_videos=n_videos, seed=5)]
        big = write_run_dir(work / "big", pairs)
        publish_run(big.path, BIG, store=store)
        (shard,) = sorted((big.path / "data").glob("*.parquet"))
        size = shard.stat().st_size
        t0 = time.perf_counter()
        with HubServer(store) as server:
            start_s = time.perf_counter() - t0
            print(f"server start: {start_s:.2f} s")
            print(f"{'request':<44} {'ms':>9}")
            routes = [("repository info, files metadata", f"/api/datasets/{REPO}/revision/iter1?blobs=true", "GET"),
                      ("refs", f"/api/datasets/{REPO}/refs", "GET"),
                      ("commits", f"/api/datasets/{REPO}/commits/iter2", "GET"),
                      ("tree, recursive", f"/api/datasets/{REPO}/tree/iter1?recursive=true", "GET"),
                      ("list datasets", "/api/datasets", "GET"),
                      ("HEAD README.md", f"/datasets/{REPO}/resolve/iter1/README.md", "HEAD"),
                      ("GET build.json", f"/datasets/{REPO}/resolve/iter1/build.json", "GET")]
            figures: dict[str, object] = {"start_s": start_s, "shard_bytes": size}
            for label, path, method in routes:
                ms = _median_ms(server.endpoint + path, args.requests, method)
                figures[label] = {"ms": ms}
                print(f"{label:<44} {ms:9.1f}")
            url = f"{server.endpoint}/datasets/{BIG}/resolve/iter1/data/{shard.name}"
            rng_header = {"Range": f"bytes={size // 2}-{size // 2 + 999_999}"}
            cold, warm = _get(url, headers=rng_header), _get(url, headers=rng_header)
            print(f"1 MB range of the {size / 1e6:.1f} MB shard: first {cold * 1000:.0f} ms (blob copied out of git), "
                  f"then {warm * 1000:.0f} ms")
            figures["range_1mb_ms"] = {"first": cold * 1000, "warm": warm * 1000}
            env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HUB_OFFLINE": "0",
                   "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
            for mode in ("stream", "pandas"):
                env["HF_HOME"] = str(work / f"hf-{mode}")
                proc = subprocess.run([sys.executable, "-c", _STOCK, mode, BIG, f"data/{shard.name}"], env=env,
                                      capture_output=True, text=True, check=True)
                rows, import_s, read_s = proc.stdout.split()
                label = ("datasets streaming=True, every row" if mode == "stream"
                         else "pandas.read_parquet(hf://...)")
                print(f"{label}: {rows} rows in {float(read_s):.2f} s (+ {float(import_s):.2f} s imports)")
                figures[mode] = {"rows": int(rows), "read_s": float(read_s), "import_s": float(import_s)}
        print(json.dumps(figures, indent=None, default=lambda v: round(v, 3)))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

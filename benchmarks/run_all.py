"""Every benchmark, one table: decode, build throughput and memory, publish and load.

    .venv/bin/python benchmarks/run_all.py [--json PATH] [--quick] [--videos 50,200] [--pairs 24000]

Runs `decode.py` (32 frames per video vs decoding every frame), `build.py` (pairs/s, share of time
outside model calls, peak RSS at two dataset sizes, each a fresh process) and `publish.py` (publish +
`load_dataset` + parquet size for 24,000 synthetic pairs) through their functions and prints one
table, with the machine it ran on. `--quick` shrinks every part to a smoke run of about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.build import BuildFigures, measure_builds, parse_sizes  # noqa: E402
from benchmarks.decode import SIZES, DecodeFigures, figures_json, measure_decode  # noqa: E402
from benchmarks.publish import FIRST_PUBLISH, IMPORT_DATASETS, LOAD_DATASET, PublishFigures, measure_publish  # noqa: E402

PARTS = ("decode", "build", "publish")
QUICK = {"videos": [6, 12], "pairs": 1_200, "pairs_per_shard": 500, "decode_sizes": ["240p"], "reps": 1,
         "pool_videos": 4}


def machine() -> dict[str, Any]:
    """What the figures depend on; load average matters because this machine may be shared."""
    import psutil
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def decode_rows(figs: list[DecodeFigures], seconds: float) -> list[tuple[str, str, str, str]]:
    rows = []
    for f in figs:
        what = f"decode {f.clip}, {seconds:g} s clip ({f.frames} frames)"
        rows.append((what, "s/video, 32 frames: decord / pyav", f"{f.decord_s:.3f} / {f.pyav_s:.3f}",
                     f"floor (decode every frame) {f.floor_s:.3f} s; decord = {f.vs_floor:.2f}x floor"))
        rows.append((what, f"pool, {f.workers} workers, ->448", f"{f.pool_videos_per_s:.2f} videos/s",
                     f"1 process decord ->448: {1 / f.decord_resized_s:.2f} videos/s"))
    return rows


def build_rows(figs: list[BuildFigures]) -> list[tuple[str, str, str, str]]:
    rows = []
    first = figs[0] if figs else None
    for f in figs:
        what = f"build, {f.videos} videos x {f.num_frames} frames"
        b = f.outside_breakdown()
        rows.append((what, "pairs/s: whole build / loop", f"{f.pairs_per_s:.2f} / {f.loop_pairs_per_s:.2f}",
                     f"{f.pairs} pairs, {f.model_calls} model calls, {f.total_s:.0f} s"))
        rows.append((what, "outside model calls: build / loop", f"{f.outside_share:.1%} / {f.loop_outside_share:.1%}",
                     f"target < 10%; model load {b['model_load_s']:.1f} s, sample {b['sample_s']:.1f} s, "
                     f"decode wait {b['decode_wait_s']:.1f} s, stages {b['stage_overhead_s']:.1f} s, "
                     f"finalise {b['finalize_s']:.1f} s"))
        growth = "" if f is first or first is None else (
            f"vs {first.videos} videos: {f.peak_rss_main_mb - first.peak_rss_main_mb:+.0f} MB "
            f"(tree {f.peak_rss_tree_mb - first.peak_rss_tree_mb:+.0f} MB)")
        rss = f"{f.peak_rss_main_mb:.0f} MB ({f.peak_rss_tree_mb:.0f} MB)"
        rows.append((what, "peak RSS: build process (tree)", rss, growth))
        rows.append((what, "reserve videos per 1,000 pairs", f"{f.reserve_per_1000_pairs:.1f}",
                     f"{f.reserve_videos} reserve videos for {f.pairs} pairs"
                     + (f"; short by {f.shortfall_pairs} pairs" if f.shortfall_pairs else "; every quota met")))
        st = f.model_stats
        rows.append((what, "vision encodes per video / prefill vs min",
                     f"{f.vision_encodes_per_video:.2f} / {f.prefill_vs_min:.3f}",
                     f"targets 1 / <= 1.25 (counted); {st.get('vision_encodes', 0)} encodes, "
                     f"{st.get('prefill_tokens', 0):,} prefill tokens, {st.get('prefix_hits', 0)} prefix hits"))
    return rows


def publish_rows(p: PublishFigures) -> list[tuple[str, str, str, str]]:
    s = p.steps
    what = f"publish {p.pairs:,} pairs"
    noop = next((v for k, v in s.items() if "no-op" in k), 0.0)
    return [
        (what, "publish_run: first / identical again", f"{s[FIRST_PUBLISH]:.1f} s / {noop:.1f} s",
         f"timed alone: validate {s.get('validate (schema + every row)', 0):.1f} s, "
         f"assemble {s.get('assemble (swift, card, plots)', 0):.1f} s"),
        (what, "datasets.load_dataset through the hub server", f"{s[LOAD_DATASET]:.1f} s",
         f"fresh interpreter; importing datasets alone {s[IMPORT_DATASETS]:.1f} s; "
         f"load_revision via the server {s.get('load_revision through the hub server', 0):.1f} s"),
        (what, "parquet size: pairs (data/)", f"{_mb(p.data_parquet_bytes)} ({p.shards} shards)",
         f"{p.data_parquet_bytes / max(p.pairs, 1):.0f} B/pair; whole revision {_mb(p.revision_bytes)}, "
         f"store {_mb(p.store_bytes)}"),
    ]


def summary_table(sections: list[list[tuple[str, str, str, str]]], title: str) -> object:
    from rich.table import Table

    table = Table(title=title)
    for col, justify in (("benchmark", "left"), ("measure", "left"), ("value", "right"), ("against", "left")):
        table.add_column(col, justify=justify)
    for rows in sections:
        for i, row in enumerate(rows):
            table.add_row(*row, end_section=i == len(rows) - 1)
    return table


def markdown_table(sections: list[list[tuple[str, str, str, str]]]) -> str:
    lines = ["| benchmark | measure | value | against |", "|---|---|---:|---|"]
    lines += ["| " + " | ".join(row) + " |" for rows in sections for row in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="also write every figure as JSON here")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown here")
    ap.add_argument("--quick", action="store_true", help="small sizes everywhere: a smoke run")
    ap.add_argument("--skip", action="append", choices=PARTS, default=[], help="leave a part out (repeatable)")
    ap.add_argument("--videos", type=parse_sizes, default=[50, 200], help="build sizes, comma-separated")
    ap.add_argument("--frames", type=int, default=32, help="frames per video in the build")
    ap.add_argument("--pairs", type=int, default=24_000, help="synthetic pairs to publish and load")
    ap.add_argument("--pairs-per-shard", type=int, default=5_000)
    ap.add_argument("--decode-sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--decode-seconds", type=float, default=10.0, help="decode clip length (30 fps)")
    ap.add_argument("--reps", type=int, default=3, help="decode repetitions (median)")
    ap.add_argument("--pool-videos", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="decoder pool workers in the decode benchmark")
    ap.add_argument("--workdir", type=Path, default=None, help="keep build and publish files here")
    args = ap.parse_args()
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

    from rich.console import Console

    console = Console(width=max(Console().width, 160))
    info = machine()
    console.print(f"[bold]{info['cpu']}[/], {info['cores']} cores, {info['memory_gb']} GB, torch {info['torch']}, "
                  f"load average {info['load_avg_start']}")
    results: dict[str, Any] = {"machine": info, "args": {k: (str(v) if isinstance(v, Path) else v)
                                                         for k, v in vars(args).items()}}
    sections: list[list[tuple[str, str, str, str]]] = []
    t_all = time.perf_counter()
    if "decode" not in args.skip:
        console.print("[bold]decode[/]")
        t0 = time.perf_counter()
        dec = measure_decode(args.decode_sizes, args.decode_seconds, args.reps, args.pool_videos, args.workers)
        results["decode"] = figures_json(dec)
        results["decode_wall_s"] = round(time.perf_counter() - t0, 1)
        sections.append(decode_rows(dec, args.decode_seconds))
    if "build" not in args.skip:
        console.print("[bold]build[/]")
        t0 = time.perf_counter()
        builds = measure_builds(args.videos, args.frames, args.workdir / "build" if args.workdir else None)
        results["build"] = [f.to_json() for f in builds]
        results["build_wall_s"] = round(time.perf_counter() - t0, 1)
        sections.append(build_rows(builds))
    if "publish" not in args.skip:
        console.print("[bold]publish[/]")
        t0 = time.perf_counter()
        pub = measure_publish(args.pairs, args.pairs_per_shard, args.workdir / "publish" if args.workdir else None)
        results["publish"] = pub.to_json()
        results["publish_wall_s"] = round(time.perf_counter() - t0, 1)
        sections.append(publish_rows(pub))
    info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.perf_counter() - t_all, 1)

    console.print(summary_table(sections, f"videosavi benchmarks, {info['date'][:10]} ({results['wall_s']:.0f} s)"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_table(sections) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

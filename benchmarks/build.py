"""Build throughput and memory: the tiny model on demo videos, one fresh build per dataset size.

    python benchmarks/build.py [--videos 50,200] [--frames 32] [--prefix-cache-mb MB] [--workdir DIR] [--json PATH]

Demo videos (`write_demo_data`) are written once, for the largest size; each size then runs as its
own `run_build` in a separate Python process (the demo config with `frames.num_frames` and the
source quotas overridden), so each peak RSS belongs to that build alone. Reported per size:

- pairs/s over the whole build (model load and sampling included), and over the streaming loop only;
- the share of wall time spent outside model calls (`1 - model_s / total_s` from build.json), with
  where that time went (model load, sampling, waiting for decoded frames, stage bookkeeping, finalise);
- peak RSS of the build process (its own `ru_maxrss`) and of its process tree (sampled with psutil
  every 0.2 s: the build, the decoder fork server and its workers; shared pages count once per process);
- counted, not timed (the backend's `stats`): `vision_encodes_per_video`, vision-tower passes over
  videos (1 when each video is encoded once), and `prefill_tokens_per_pair_vs_min`, the prompt tokens
  the language model computed over the minimum (each video's prefix once plus every call's own
  tokens; 1 when nothing is prefilled twice). `--prefix-cache-mb 0` measures the build without reuse.

Flat memory means the peak barely moves between the sizes: the runner streams videos through a
bounded prefetch and writes each video's pairs to disk as it finishes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SOURCES = ("star", "vidal", "webvid")
SAMPLE_EVERY_S = 0.2


@dataclass
class BuildFigures:
    """One fresh build of `videos` demo videos at `num_frames` frames each."""

    videos: int
    num_frames: int
    videos_done: int
    videos_skipped: int
    pairs: int
    model_calls: int
    timings: dict[str, float]
    peak_rss_main_mb: float
    peak_rss_tree_mb: float
    torch_threads: int
    process_wall_s: float = 0.0  # the child process, interpreter start and imports included
    reserve_videos: int = 0  # videos beyond the quotas that replaced lost pairs
    shortfall_pairs: int = 0  # pairs still missing when the demo sources ran out
    model_stats: dict[str, Any] = field(default_factory=dict)  # the backend's counters (BackendStats)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reserve_per_1000_pairs(self) -> float:
        return 1000 * self.reserve_videos / self.pairs if self.pairs else 0.0

    @property
    def total_s(self) -> float:
        return self.timings.get("total_s", 0.0)

    @property
    def model_s(self) -> float:
        return self.timings.get("model_s", 0.0)

    @property
    def loop_s(self) -> float:
        """The streaming loop: waiting for frames plus the stages (model calls included)."""
        return self.timings.get("decode_wait_s", 0.0) + self.timings.get("pipeline_s", 0.0)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.total_s if self.total_s else 0.0

    @property
    def loop_pairs_per_s(self) -> float:
        return self.pairs / self.loop_s if self.loop_s else 0.0

    @property
    def vision_encodes_per_video(self) -> float:
        """Vision-tower passes divided by videos (target 1: each video encoded once)."""
        return float(self.model_stats.get("vision_encodes_per_video", 0.0))

    @property
    def prefill_vs_min(self) -> float:
        """Prefill tokens computed over the minimum (target <= 1.25)."""
        return float(self.model_stats.get("prefill_vs_min", 0.0))

    @property
    def outside_share(self) -> float:
        """Share of the build's wall time not spent inside `backend.generate`."""
        return 1.0 - self.model_s / self.total_s if self.total_s else 0.0

    @property
    def loop_outside_share(self) -> float:
        """The same within the streaming loop, i.e. without the one-off start-up and finalise."""
        return 1.0 - self.model_s / self.loop_s if self.loop_s else 0.0

    def outside_breakdown(self) -> dict[str, float]:
        """Seconds outside model calls, by where they went (sums to total_s - model_s)."""
        t = self.timings
        parts = {
            "model_load_s": t.get("model_load_s", 0.0),
            "sample_s": t.get("sample_s", 0.0),
            "decode_wait_s": t.get("decode_wait_s", 0.0),
            "stage_overhead_s": t.get("pipeline_s", 0.0) - self.model_s,
            "finalize_s": t.get("finalize_s", 0.0),
        }
        parts["other_s"] = self.total_s - self.model_s - sum(parts.values())
        return {k: round(v, 3) for k, v in parts.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "pairs_per_s": round(self.pairs_per_s, 3),
            "loop_pairs_per_s": round(self.loop_pairs_per_s, 3),
            "outside_share": round(self.outside_share, 4),
            "loop_outside_share": round(self.loop_outside_share, 4),
            "outside_breakdown": self.outside_breakdown(),
            "reserve_per_1000_pairs": round(self.reserve_per_1000_pairs, 2),
            "vision_encodes_per_video": round(self.vision_encodes_per_video, 4),
            "prefill_tokens_per_pair_vs_min": round(self.prefill_vs_min, 4),
        }


def quotas(videos: int) -> dict[str, int]:
    """`videos` split over the three demo sources as evenly as possible."""
    base, extra = divmod(videos, len(SOURCES))
    return {s: base + (1 if i < extra else 0) for i, s in enumerate(SOURCES)}


def build_overrides(videos: int, num_frames: int, prefix_cache_mb: float | None = None) -> dict[str, Any]:
    over: dict[str, Any] = {"frames": {"num_frames": num_frames},
                            "sources": {s: {"quota": q} for s, q in quotas(videos).items()}}
    if prefix_cache_mb is not None:
        over["model"] = {"prefix_cache_mb": prefix_cache_mb}
    return over


RESERVE_SHARE = 0.25  # spare demo videos per source, for the reserve to replace lost pairs from


def write_data(data_root: Path, max_videos: int) -> float:
    """Demo videos enough for the largest size plus a reserve (quotas draw from them); seconds taken."""
    from videosavi.builders.sources.demo_data import write_demo_data

    per_source = math.ceil(max_videos * (1 + RESERVE_SHARE) / len(SOURCES))
    return write_demo_data(data_root, videos_per_source=per_source).seconds


def _tree_rss(proc: Any) -> int:
    """RSS bytes of a process and all its descendants (0 for any that vanished meanwhile)."""
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def measure_build(data_root: Path, out: Path, videos: int, num_frames: int,
                  prefix_cache_mb: float | None = None) -> BuildFigures:
    """One build in a fresh Python process, its process tree's RSS sampled while it runs."""
    import psutil

    result, log_path = out.with_suffix(".result.json"), out.with_suffix(".log")
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--data-root", str(data_root),
           "--out", str(out), "--videos", str(videos), "--frames", str(num_frames), "--result", str(result)]
    if prefix_cache_mb is not None:
        cmd += ["--prefix-cache-mb", str(prefix_cache_mb)]
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:  # a file, not a pipe: a full pipe would stall the build
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, _tree_rss(proc))
            time.sleep(SAMPLE_EVERY_S)
    wall = time.perf_counter() - t0
    if child.returncode != 0 or not result.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"benchmark build of {videos} videos failed (exit {child.returncode}):\n{tail}")
    data = json.loads(result.read_text(encoding="utf-8"))
    return BuildFigures(**data, peak_rss_tree_mb=round(peak / 2**20, 1), process_wall_s=round(wall, 2))


def run_child(data_root: Path, out: Path, videos: int, num_frames: int, result: Path,
              prefix_cache_mb: float | None = None) -> None:
    """The build itself (inside the subprocess): figures as JSON to `result`."""
    import torch

    from videosavi.builders.run.runner import BuildOptions, run_build

    res = run_build(BuildOptions(data_root=data_root, out=out, force=True,
                                 overrides=build_overrides(videos, num_frames, prefix_cache_mb)))
    c = res.info.counts
    figures = {
        "videos": videos,
        "num_frames": num_frames,
        "videos_done": c.videos_done,
        "videos_skipped": c.videos_skipped,
        "pairs": c.pairs,
        "model_calls": sum(s.calls for s in c.stages.values()),
        "timings": dict(res.info.timings or {}),
        "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
        "reserve_videos": sum(f.reserve_videos_used for f in c.sources.values()),
        "shortfall_pairs": sum(f.shortfall_pairs for f in c.sources.values()),
        "model_stats": res.model_stats,
    }
    result.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def measure_builds(sizes: list[int], num_frames: int = 32, workdir: Path | None = None,
                   log: Callable[[str], None] = print, prefix_cache_mb: float | None = None) -> list[BuildFigures]:
    """Every size, smallest first, on one set of demo videos; a temporary workdir is removed after."""
    work = workdir or Path(tempfile.mkdtemp(prefix="videosavi-bench-build-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        data_root = work / "data"
        log(f"  build: writing demo videos for {max(sizes)} ...")
        log(f"  build: demo videos written in {write_data(data_root, max(sizes)):.1f} s")
        out = []
        for n in sorted(sizes):
            fig = measure_build(data_root, work / f"run-{n}", n, num_frames, prefix_cache_mb)
            log(f"  build {n} videos x {num_frames} frames: {fig.pairs} pairs in {fig.total_s:.1f} s "
                f"({fig.pairs_per_s:.2f} pairs/s), {fig.outside_share:.1%} outside model calls, "
                f"peak RSS {fig.peak_rss_main_mb:.0f} MB (tree {fig.peak_rss_tree_mb:.0f} MB), "
                f"{fig.vision_encodes_per_video:.2f} vision encodes/video, prefill {fig.prefill_vs_min:.3f}x min")
            out.append(fig)
        return out
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def build_table(figures: list[BuildFigures]) -> object:
    from rich.table import Table

    table = Table(title="savi-build with the tiny model on demo videos (one fresh process per size)",
                  caption="outside = share of build wall time not inside model calls; loop = the streaming "
                          "loop only (no model load, sampling, finalise); RSS tree = build process + decoder "
                          "workers; enc/video = vision-tower passes per video; prefill/min = prefill tokens "
                          "computed over the minimum")
    for col in ("videos", "frames", "pairs", "calls", "wall s", "pairs/s", "loop pairs/s", "outside", "loop outside",
                "model load s", "decode wait s", "RSS MB", "RSS tree MB", "enc/video", "prefill/min"):
        table.add_column(col, justify="right")
    for f in figures:
        b = f.outside_breakdown()
        table.add_row(str(f.videos), str(f.num_frames), str(f.pairs), str(f.model_calls), f"{f.total_s:.1f}",
                      f"{f.pairs_per_s:.2f}", f"{f.loop_pairs_per_s:.2f}", f"{f.outside_share:.1%}",
                      f"{f.loop_outside_share:.1%}", f"{b['model_load_s']:.1f}", f"{b['decode_wait_s']:.1f}",
                      f"{f.peak_rss_main_mb:.0f}", f"{f.peak_rss_tree_mb:.0f}",
                      f"{f.vision_encodes_per_video:.2f}", f"{f.prefill_vs_min:.3f}")
    return table


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--videos takes comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--videos needs at least one size >= 1, got {text!r}")
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=parse_sizes, default=[50, 200], help="comma-separated sizes (default 50,200)")
    ap.add_argument("--frames", type=int, default=32, help="frames per video (frames.num_frames)")
    ap.add_argument("--prefix-cache-mb", type=float, default=None,
                    help="model.prefix_cache_mb for the builds (0 = no prefix reuse; default: the backend's)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep demo data and run dirs here")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data-root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args.data_root, args.out, args.videos[0], args.frames, args.result, args.prefix_cache_mb)
        return

    from rich.console import Console

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    figures = measure_builds(args.videos, args.frames, args.workdir, prefix_cache_mb=args.prefix_cache_mb)
    Console().print(build_table(figures))
    if args.json:
        args.json.write_text(json.dumps([f.to_json() for f in figures], indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

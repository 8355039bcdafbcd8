"""Frame decoding speed: 32 uniformly spaced frames per video at 240p/360p/720p, next to the floor of
decoding every frame with PyAV, and the throughput of the worker pool.

    python benchmarks/decode.py [--seconds 10] [--reps 3] [--pool-videos 8] [--workers 2] [--json PATH]

Clips are synthetic (moving shapes, x264 `veryfast` with B-frames, 30 fps, keyframe every 250 frames)
and written to a temporary folder first. Figures are medians of `--reps` runs, wall seconds per video,
in this process (decoders use one thread each); "pool" runs `--pool-videos` decodes (resized to 448x448)
through a started `FrameDecoderPool` with `--workers` processes and reports videos/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

SIZES = {"240p": (320, 240), "360p": (640, 360), "720p": (1280, 720)}
NUM_FRAMES = 32


@dataclass(frozen=True)
class DecodeFigures:
    """One clip size; seconds are medians per video, rates are videos per second."""

    clip: str
    frames: int
    decord_s: float
    pyav_s: float
    decord_resized_s: float  # decord, resized to 448x448 (the paper config)
    floor_s: float  # PyAV decoding every frame, no RGB conversion
    pool_videos_per_s: float
    workers: int
    clip_write_s: float

    @property
    def vs_floor(self) -> float:
        """decord's time as a multiple of decoding every frame (below 1: skipping frames pays off)."""
        return self.decord_s / self.floor_s if self.floor_s else float("inf")


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up: imports, page cache
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def decode_all_pyav(path: Path) -> int:
    """The floor: demux and decode every frame, no colour conversion."""
    import av

    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for _ in container.decode(stream):
            n += 1
    return n


def pool_rate(path: Path, videos: int, workers: int, resize: tuple[int, int] | None) -> float:
    """Videos/s through the worker pool once it is started (frames are pickled back to this process)."""
    from videosavi.builders.decode.pool import FrameDecoderPool

    with FrameDecoderPool(workers=workers, timeout_s=120) as pool:
        warm = [(i, path, NUM_FRAMES, None, None, resize) for i in range(workers)]
        list(pool.decode_many(warm, prefetch=workers))
        t0 = time.perf_counter()
        for _key, out in pool.decode_many(((i, path, NUM_FRAMES, None, None, resize) for i in range(videos)),
                                          prefetch=2 * workers):
            if not hasattr(out, "frames"):
                raise RuntimeError(f"decode failed: {out}")
        return videos / (time.perf_counter() - t0)


def measure_clip(label: str, folder: Path, seconds: float, reps: int, pool_videos: int,
                 workers: int) -> DecodeFigures:
    """Write one synthetic clip of size `label` into `folder` and time every decode path on it."""
    from videosavi.builders.decode.frames import decode_frames
    from videosavi.builders.sources.synthetic_video import write_video

    w, h = SIZES[label]
    frames = int(seconds * 30)
    t0 = time.perf_counter()
    path = write_video(folder / f"{label}.mp4", num_frames=frames, fps=30, width=w, height=h,
                       preset="veryfast", seed=1)
    written = time.perf_counter() - t0
    return DecodeFigures(
        clip=label,
        frames=frames,
        decord_s=median_seconds(lambda: decode_frames(path, NUM_FRAMES, decoders=("decord",)), reps),
        pyav_s=median_seconds(lambda: decode_frames(path, NUM_FRAMES, decoders=("pyav",)), reps),
        decord_resized_s=median_seconds(
            lambda: decode_frames(path, NUM_FRAMES, resize=(448, 448), decoders=("decord",)), reps),
        floor_s=median_seconds(lambda: decode_all_pyav(path), reps),
        pool_videos_per_s=pool_rate(path, pool_videos, workers, (448, 448)),
        workers=workers,
        clip_write_s=written,
    )


def measure_decode(sizes: list[str], seconds: float = 10.0, reps: int = 3, pool_videos: int = 8,
                   workers: int = 2, log: Callable[[str], None] = print) -> list[DecodeFigures]:
    """Every clip size in a temporary folder that is removed afterwards."""
    out = []
    with tempfile.TemporaryDirectory(prefix="videosavi-bench-") as tmp:
        for label in sizes:
            fig = measure_clip(label, Path(tmp), seconds, reps, pool_videos, workers)
            log(f"  decode {label}: clip written in {fig.clip_write_s:.1f} s, decord {fig.decord_s:.3f} s/video, "
                f"floor {fig.floor_s:.3f} s/video")
            out.append(fig)
    return out


def decode_table(figures: list[DecodeFigures], seconds: float) -> object:
    """The detailed rich table of this benchmark."""
    from rich.table import Table

    workers = figures[0].workers if figures else 0
    table = Table(title=f"{NUM_FRAMES} frames/video, {seconds:g} s clips, 30 fps: median wall s per video",
                  caption="pyav = the fallback path; ->448 = resized to 448x448 (the paper config); floor = PyAV "
                          f"decoding every frame, no RGB; pool = videos/s with {workers} workers, ->448")
    for col in ("clip", "frames", "decord", "pyav", "decord->448", "floor", "pool v/s", "decord v/s"):
        table.add_column(col, justify="right")
    for f in figures:
        table.add_row(f.clip, str(f.frames), f"{f.decord_s:.3f}", f"{f.pyav_s:.3f}", f"{f.decord_resized_s:.3f}",
                      f"{f.floor_s:.3f}", f"{f.pool_videos_per_s:.2f}", f"{1 / f.decord_s:.2f}")
    return table


def figures_json(figures: list[DecodeFigures]) -> list[dict]:
    return [{**asdict(f), "vs_floor": round(f.vs_floor, 2)} for f in figures]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (30 fps)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pool-videos", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args()

    from rich.console import Console

    figures = measure_decode(args.sizes, args.seconds, args.reps, args.pool_videos, args.workers)
    Console().print(decode_table(figures, args.seconds))
    if args.json:
        args.json.write_text(json.dumps(figures_json(figures), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

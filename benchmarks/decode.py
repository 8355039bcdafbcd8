"""Frame decoding speed: 32 uniformly spaced frames per video at 240p/360p/720p, next to the floor of
decoding every frame with PyAV, and the throughput of the worker pool.

    python benchmarks/decode.py [--seconds 10] [--reps 3] [--pool-videos 8] [--workers 2]

Clips are synthetic (moving shapes, x264 `veryfast` with B-frames, 30 fps, keyframe every 250 frames)
and written to a temporary folder first. Figures are medians of `--reps` runs, wall seconds per video,
in this process (decoders use one thread each); "pool" runs `--pool-videos` decodes (resized to 448x448)
through a started `FrameDecoderPool` with `--workers` processes and reports videos/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from videosavi.builders.decode_pool import FrameDecoderPool
from videosavi.builders.frames import decode_frames
from videosavi.builders.synthetic_video import write_video

SIZES = {"240p": (320, 240), "360p": (640, 360), "720p": (1280, 720)}


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
    with FrameDecoderPool(workers=workers, timeout_s=120) as pool:
        warm = [(i, path, 32, None, None, resize) for i in range(workers)]
        list(pool.decode_many(warm, prefetch=workers))
        t0 = time.perf_counter()
        for _key, out in pool.decode_many(((i, path, 32, None, None, resize) for i in range(videos)),
                                          prefetch=2 * workers):
            if not hasattr(out, "frames"):
                raise RuntimeError(f"decode failed: {out}")
        return videos / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (30 fps)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pool-videos", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"32 frames/video, {args.seconds:g} s clips, 30 fps: median wall s per video",
                  caption="pyav = the fallback path; ->448 = resized to 448x448 (the paper config); floor = PyAV "
                          f"decoding every frame, no RGB; pool = videos/s with {args.workers} workers, ->448")
    for col in ("clip", "frames", "decord", "pyav", "decord->448", "floor", "pool v/s", "decord v/s"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="videosavi-bench-") as tmp:
        for label in args.sizes:
            w, h = SIZES[label]
            frames = int(args.seconds * 30)
            t0 = time.perf_counter()
            path = write_video(Path(tmp) / f"{label}.mp4", num_frames=frames, fps=30, width=w, height=h,
                               preset="veryfast", seed=1)
            gen = time.perf_counter() - t0
            dec = median_seconds(lambda p=path: decode_frames(p, 32, decoders=("decord",)), args.reps)
            pyav = median_seconds(lambda p=path: decode_frames(p, 32, decoders=("pyav",)), args.reps)
            rs = median_seconds(lambda p=path: decode_frames(p, 32, resize=(448, 448), decoders=("decord",)),
                                args.reps)
            floor = median_seconds(lambda p=path: decode_all_pyav(p), args.reps)
            rate = pool_rate(path, args.pool_videos, args.workers, (448, 448))
            table.add_row(label, str(frames), f"{dec:.3f}", f"{pyav:.3f}", f"{rs:.3f}", f"{floor:.3f}",
                          f"{rate:.2f}", f"{1 / dec:.2f}")
            print(f"  {label}: clip written in {gen:.1f} s", flush=True)
    Console().print(table)


if __name__ == "__main__":
    main()

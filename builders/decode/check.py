"""Decode a whole sample once through the worker pool and count what happened.

`savi sample --decode` uses it to show, before any model runs, how many sampled videos decode, which
decoder served them and why the others would be skipped.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosavi.builders.decode.frames import DecodedFrames
from videosavi.builders.decode.pool import FrameDecoderPool
from videosavi.config import BuildConfig
from videosavi.progress import progress_bar
from videosavi.schemas import VideoRef

_EXAMPLES = 10


@dataclass
class DecodeReport:
    attempted: int = 0
    decoded: int = 0
    wall_s: float = 0.0
    by_decoder: Counter = field(default_factory=Counter)  # "decord" / "pyav"
    skipped: Counter = field(default_factory=Counter)  # reason -> videos
    decoded_by_source: Counter = field(default_factory=Counter)
    skipped_by_source: Counter = field(default_factory=Counter)
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # (video_uid, reason, message)

    @property
    def seconds_per_video(self) -> float:
        return self.wall_s / self.attempted if self.attempted else 0.0

    @property
    def videos_per_second(self) -> float:
        return self.attempted / self.wall_s if self.wall_s else 0.0


def decode_sample(videos: list[VideoRef], cfg: BuildConfig, data_root: Path) -> DecodeReport:
    """Decode every available video with the config's frame settings; the frames are dropped."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    todo = [v for v in videos if v.available]
    report = DecodeReport(attempted=len(todo))
    f = cfg.frames
    tasks = ((i, Path(data_root) / cfg.sources[v.source].root / v.video_path, f.num_frames, v.clip_start,
              v.clip_end, f.resize) for i, v in enumerate(todo))
    t0 = time.perf_counter()
    with progress_bar(TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True) as bar, FrameDecoderPool(
        workers=f.workers, timeout_s=f.timeout_s, max_tasks_per_worker=f.max_tasks_per_worker
    ) as pool:
        task = bar.add_task("decode", total=len(todo))
        for i, out in pool.decode_many(tasks, prefetch=2 * f.workers):
            _count(report, todo[i], out)
            bar.advance(task)
    report.wall_s = time.perf_counter() - t0
    return report


def _count(report: DecodeReport, video: VideoRef, out: Any) -> None:
    if isinstance(out, DecodedFrames):
        report.decoded += 1
        report.by_decoder[out.decoder] += 1
        report.decoded_by_source[video.source] += 1
        return
    reason = str(getattr(out, "reason", "decode_error"))
    report.skipped[reason] += 1
    report.skipped_by_source[video.source] += 1
    if len(report.examples) < _EXAMPLES:
        report.examples.append((video.video_uid, reason, str(out)[:300]))

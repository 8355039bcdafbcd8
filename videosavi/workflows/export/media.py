"""Which media file each exported row points at, and which files the export must make (pure).

`cut` (default): a row without a clip span points at its video file under the user's root; a row
with one (STAR) points at `clips/<source>/<id>_<start>-<end>.mp4`, cut once however many rows share
it. `frames`: every row points at `frames/<source>/<id>-<hash>/`, the frames it stores, written once
per distinct (video, indices). Names are deterministic, so the same revision exports to the same
layout on any machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from videosavi.hashing import stable_hash

ClipMode = Literal["cut", "frames"]
CLIP_MODES: tuple[str, ...] = ("cut", "frames")
CLIPS_DIR = "clips"
FRAMES_DIR = "frames"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class MediaJob:
    """One file (a cut clip) or folder (frames) the export writes, relative to OUT."""

    kind: Literal["clip", "frames"]
    src: Path
    rel: str
    clip_start: float | None = None
    clip_end: float | None = None
    indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class RowMedia:
    """A row's media: its own file (`video`, absolute) or the job that makes its clip or frames."""

    video: Path | None = None
    job: MediaJob | None = None


def safe_name(text: str) -> str:
    """A file-name part from an id (ids may hold '/', spaces, ...); a hash keeps altered ids apart."""
    safe = _UNSAFE.sub("_", text).strip("._")[:80] or "video"
    return safe if safe == text else f"{safe}-{stable_hash(text, 8)}"


def _seconds(value: float | None, default: str) -> str:
    return default if value is None else f"{value:g}"


def clip_rel(source: str, video_id: str, clip_start: float | None, clip_end: float | None) -> str:
    span = f"{_seconds(clip_start, '0')}-{_seconds(clip_end, 'end')}"
    return f"{CLIPS_DIR}/{source}/{safe_name(video_id)}_{span}.mp4"


def frames_rel(source: str, video_id: str, video_path: str, indices: list[int], resize: tuple[int, int] | None,
               image_format: str) -> str:
    key = stable_hash([video_path, list(indices), list(resize) if resize else None, image_format], 8)
    return f"{FRAMES_DIR}/{source}/{safe_name(video_id)}-{key}"


def plan_row_media(row: dict[str, Any], file: Path, mode: ClipMode, *, resize: tuple[int, int] | None = None,
                   image_format: str = "jpg") -> RowMedia:
    """The media of one row whose video `file` passed the checks."""
    if mode == "frames":
        indices = [int(i) for i in row["frame_indices"]]
        rel = frames_rel(row["source"], row["video_id"], row["video_path"], indices, resize, image_format)
        return RowMedia(job=MediaJob("frames", file, rel, indices=tuple(indices)))
    if row.get("clip_start") is None and row.get("clip_end") is None:
        return RowMedia(video=file)
    rel = clip_rel(row["source"], row["video_id"], row.get("clip_start"), row.get("clip_end"))
    return RowMedia(job=MediaJob("clip", file, rel, clip_start=row.get("clip_start"), clip_end=row.get("clip_end")))


def distinct_jobs(media: list[RowMedia | None]) -> list[MediaJob]:
    """Each job once, in first-use order; two different jobs claiming one path is a bug, not a race."""
    jobs: dict[str, MediaJob] = {}
    for m in media:
        if m is None or m.job is None:
            continue
        seen = jobs.setdefault(m.job.rel, m.job)
        if seen != m.job:
            raise ValueError(f"two different media claim {m.job.rel}")
    return list(jobs.values())

"""Decode the N uniformly spaced frames of a video (or of its clip span), with the exact indices.

decord first (`VideoReader(path, ctx=cpu(0), num_threads=1)`, frame-exact, applies rotation
metadata, resizes natively); on any failure PyAV once, rotated to match decord; if both fail the video
is skipped with a stable reason code (`videosavi.builders.decode.errors`). A file damaged part-way
raises rather than giving fewer frames. The frame count always comes from the container index,
never from duration x fps, which overshoots when the audio outlasts the video.

These functions run in the calling process; a build calls them through `FrameDecoderPool`
(`decode_pool.py`) because decord can hang or crash on some real-world files.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from videosavi.builders.decode.errors import (
    DECODE_REASONS,
    ClipOutOfRangeError,
    CorruptVideoError,
    DecodeError,
    DecoderCrashError,
    DecodeTimeoutError,
    EmptyFileError,
    FrameIndexError,
    FramesTooLargeError,
    MissingFileError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    UnreadableFileError,
)
from videosavi.builders.decode.frame_indices import clip_frame_range, frame_timestamps, spread, uniform_indices
from videosavi.builders.decode.pyav_reader import PyAVReader, looks_like_container
from videosavi.schemas import FrameSample
from videosavi.schemas.frames import check_resize

DECODERS: tuple[str, ...] = ("decord", "pyav")
Resize = tuple[int, int] | None  # (height, width)
T = TypeVar("T")


@dataclass(frozen=True)
class DecodedFrames:
    """What the model sees of one video, and exactly which frames those are."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    sample: FrameSample
    fps: float
    duration: float  # seconds of video: container frame count / fps
    decoder: str  # "decord" | "pyav"
    fallback_error: str | None = None  # why decord failed when PyAV produced the frames
    sha256: str | None = None  # of the bytes decoded, when the caller hashed them (`source_decode`)


class DecordReader:
    """decord behind the same small interface as `PyAVReader` (num_frames, fps, read)."""

    name = "decord"

    def __init__(self, path: str | Path, resize: Resize = None) -> None:
        import decord

        self.path = str(path)
        h, w = resize if resize is not None else (-1, -1)
        try:
            self._vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=1, width=w, height=h)
        except Exception as exc:  # decord raises RuntimeError or its own DECORDError (a RuntimeError)
            raise _classify_decord(exc, self.path) from exc
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps())
        if self.num_frames <= 0:
            raise CorruptVideoError("decord found no frames", self.path)
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise CorruptVideoError(f"decord reports an unusable frame rate ({self.fps})", self.path)

    def read(self, indices: list[int]) -> np.ndarray:
        if indices[-1] >= self.num_frames:
            raise FrameIndexError(
                f"frame {indices[-1]} asked for, but the video has {self.num_frames} frames", self.path
            )
        try:
            arr = self._vr.get_batch(list(indices)).asnumpy()
        except Exception as exc:
            raise _classify_decord(exc, self.path) from exc
        if arr.shape[0] != len(indices):  # never hand back fewer frames than asked for
            raise TruncatedVideoError(f"decord returned {arr.shape[0]} of {len(indices)} frames", self.path)
        return arr

    def close(self) -> None:
        del self._vr

    def __enter__(self) -> DecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _classify_decord(exc: BaseException, path: str) -> DecodeError:
    """decord's messages, mapped to our reasons (only used when decord is the last decoder tried)."""
    text = str(exc)
    short = text.strip().splitlines()[-1][:300] if text.strip() else type(exc).__name__
    if "cannot find video stream" in text:
        return NoVideoStreamError("the file has no video stream", path)
    if text.startswith("Error reading"):
        if looks_like_container(path):
            return TruncatedVideoError(f"decord cannot read the container's index ({short})", path)
        return NotAVideoError(f"no demuxer recognises the data ({short})", path)
    if "av_read_frame" in text:
        return TruncatedVideoError(f"the data ends early ({short})", path)
    return CorruptVideoError(f"decord failed: {short}", path)


_READERS: dict[str, Callable[[str, Resize], Any]] = {"decord": DecordReader, "pyav": PyAVReader}


def check_file(path: str | Path) -> None:
    """Fail fast, without a decoder, on what a stat can tell: missing, not a file, unreadable, empty."""
    p = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError as exc:
        raise MissingFileError("no such file", p) from exc
    except OSError as exc:
        raise UnreadableFileError(f"cannot stat the file ({exc.strerror or exc})", p) from exc
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFileError("not a regular file", p)
    if st.st_size == 0:
        raise EmptyFileError("the file is empty (0 bytes)", p)
    if not os.access(p, os.R_OK):
        raise UnreadableFileError("no permission to read the file", p)


def _with_decoders(path: str | Path, resize: Resize, decoders: Sequence[str],
                   use: Callable[[Any], T]) -> tuple[T, str, str | None]:
    """Run `use(reader)` with each decoder in turn; the first success wins.

    Errors that do not depend on the decoder (the clip or the stored indices fall outside the video)
    are raised at once. Otherwise the last decoder's classified error is raised, naming the others'.
    """
    unknown = [d for d in decoders if d not in _READERS]
    if unknown or not decoders:
        raise ValueError(f"decoders must be a non-empty subset of {DECODERS}, got {list(decoders)}")
    check_file(path)
    failures: list[tuple[str, DecodeError]] = []
    for name in decoders:
        try:
            with _READERS[name](str(path), resize) as reader:
                return use(reader), name, (f"{failures[-1][0]}: {failures[-1][1].message}" if failures else None)
        except (ClipOutOfRangeError, FrameIndexError) as exc:
            exc.path = str(path)
            raise
        except DecodeError as exc:
            failures.append((name, exc))
        except Exception as exc:  # an unexpected decoder exception still only costs this one video
            failures.append((name, CorruptVideoError(f"{type(exc).__name__}: {exc}", str(path))))
    name, last = failures[-1]
    if len(failures) > 1:
        others = "; ".join(f"{n}: {e.message}" for n, e in failures[:-1])
        raise type(last)(f"{last.message} [{name}; also failed with {others}]", str(path))
    raise last


# At most this many bytes of decoded frames per call (32 frames of 4096 x 4096 x 3 are 1.6 GB).
MAX_FRAME_BYTES = 4 << 30


def check_frame_memory(path: str | Path, frames: int, resize: Resize) -> None:
    """Refuse, before a decoder allocates anything, frames that would not fit in memory: a decoder asked
    for 32 frames of 20000 x 20000 aborts the whole process (std::bad_alloc), leaving its work behind."""
    if resize is None:
        return
    try:
        h, w = check_resize(resize) or (0, 0)
    except ValueError as exc:
        raise FramesTooLargeError(str(exc), str(path)) from exc
    need = frames * h * w * 3
    if need > MAX_FRAME_BYTES:
        raise FramesTooLargeError(f"{frames} frames of {h} x {w} need {need / 2**30:.1f} GiB, more than the "
                                  f"{MAX_FRAME_BYTES / 2**30:.0f} GiB allowed; use a smaller resize", str(path))


def decode_frames(path: str | Path, num_frames: int, clip_start: float | None = None,
                  clip_end: float | None = None, resize: Resize = None, *,
                  decoders: Sequence[str] = DECODERS) -> DecodedFrames:
    """N uniformly spaced frames within [clip_start, clip_end] s (the whole video when not given).

    A clip with fewer than N frames gives all of its frames. `resize` is (height, width).
    """
    check_frame_memory(path, num_frames, resize)

    def use(reader: Any) -> DecodedFrames:
        indices = uniform_indices(reader.num_frames, num_frames, reader.fps, clip_start, clip_end)
        frames = reader.read(indices)
        sample = FrameSample(frame_indices=indices, frame_timestamps=frame_timestamps(indices, reader.fps),
                             num_frames=reader.num_frames)
        return DecodedFrames(frames=frames, sample=sample, fps=reader.fps,
                             duration=round(reader.num_frames / reader.fps, 6), decoder=reader.name)

    out, name, fallback = _with_decoders(path, resize, decoders, use)
    if fallback:
        out = DecodedFrames(out.frames, out.sample, out.fps, out.duration, name, fallback)
    return out


def decode_at_indices(path: str | Path, indices: Sequence[int], resize: Resize = None, *,
                      decoders: Sequence[str] = DECODERS) -> np.ndarray:
    """Exactly these frames, (T, H, W, 3) uint8: training re-decodes the indices a pair stores."""
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError("no frame indices given")
    if idx[0] < 0 or any(b <= a for a, b in pairwise(idx)):
        raise ValueError(f"frame indices must be >= 0 and strictly increasing, got {idx[:8]}...")
    check_frame_memory(path, len(idx), resize)
    frames, _, _ = _with_decoders(path, resize, decoders, lambda reader: reader.read(idx))
    return frames


__all__ = [
    "DECODERS",
    "DECODE_REASONS",
    "ClipOutOfRangeError",
    "CorruptVideoError",
    "DecodeError",
    "DecodeTimeoutError",
    "DecodedFrames",
    "DecoderCrashError",
    "EmptyFileError",
    "FrameIndexError",
    "MissingFileError",
    "NoVideoStreamError",
    "NotAVideoError",
    "TruncatedVideoError",
    "UnreadableFileError",
    "check_file",
    "clip_frame_range",
    "decode_at_indices",
    "decode_frames",
    "frame_timestamps",
    "spread",
    "uniform_indices",
]

"""PyAV frame reader: the fallback when decord fails, made to give decord's frames.

It counts frames from the container index (one demux pass, no decoding), so an .mkv without a frame
count or a file whose audio outlasts its video gets its true count rather than duration x fps. It
seeks only when a keyframe lies between the current position and the next wanted frame, decodes
forward, and converts only the wanted frames. PyAV returns coded (unrotated) frames where decord
applies the display matrix of phone clips; this reader rotates to match.
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from videosavi.builders.decode.errors import (
    CorruptVideoError,
    DecodeError,
    FrameIndexError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
)

# Seeking costs a demuxer reposition and a decoder flush; below this many skipped frames decoding
# straight through is as cheap.
_SEEK_MIN_GAP = 8

# Leading bytes of containers we know. A file that starts like a container but will not open lost
# its index (a truncated download), which is a different fix from "this is not a video at all".
_MAGIC = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),  # ISO BMFF / QuickTime
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM (EBML)
    (0, b"RIFF"),  # AVI
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
)


def looks_like_container(path: str | Path) -> bool:
    """True if the first bytes are a known video container signature."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x47" and _ts_sync(path):
        return True
    return any(head[at:at + len(magic)] == magic for at, magic in _MAGIC)


def _ts_sync(path: str | Path) -> bool:
    """MPEG-TS: a 0x47 sync byte every 188 bytes."""
    with open(path, "rb") as fh:
        data = fh.read(188 * 3 + 1)
    return len(data) > 188 * 2 and all(data[i] == 0x47 for i in (0, 188, 376))


class PyAVReader:
    """Open, index and read one file; use as a context manager."""

    name = "pyav"

    def __init__(self, path: str | Path, resize: tuple[int, int] | None = None) -> None:
        import av

        self.path = str(path)
        self.resize = resize
        try:
            self._container = av.open(self.path)
        except av.error.FFmpegError as exc:
            if looks_like_container(self.path):
                raise TruncatedVideoError(f"the container's index cannot be read ({exc})", self.path) from exc
            raise NotAVideoError(f"no demuxer recognises the data ({exc})", self.path) from exc
        try:
            if not self._container.streams.video:
                raise NoVideoStreamError("the file has no video stream", self.path)
            self._stream = self._container.streams.video[0]
            self._stream.codec_context.thread_count = 1  # parallelism comes from worker processes
            self._index()
        except BaseException:
            self._container.close()
            raise

    # --- index ------------------------------------------------------------------------------------
    def _index(self) -> None:
        import av

        stream = self._stream
        pts: list[int | None] = []
        keyframe_pts: list[int] = []
        try:
            for packet in self._container.demux(stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                p = packet.pts if packet.pts is not None else packet.dts
                pts.append(p)
                if packet.is_keyframe and p is not None:
                    keyframe_pts.append(p)
        except av.error.FFmpegError as exc:
            raise TruncatedVideoError(f"reading the packets failed after {len(pts)} ({exc})", self.path) from exc
        declared = int(stream.frames or 0)
        if declared and len(pts) < declared:
            raise TruncatedVideoError(
                f"the index lists {declared} frames but the file holds only {len(pts)}", self.path
            )
        if not pts:
            raise CorruptVideoError("the video stream holds no frames", self.path)
        self.num_frames = len(pts)
        # Presentation order is pts order; without usable pts (raw streams) fall back to counting.
        known = [p for p in pts if p is not None]
        self._pts_mode = len(known) == len(pts) and len(set(known)) == len(known)
        self._sorted_pts: list[int] = []
        if self._pts_mode:
            self._sorted_pts = sorted(known)
            self._index_of = {p: i for i, p in enumerate(self._sorted_pts)}
            self._keyframes = sorted(self._index_of[p] for p in keyframe_pts if p in self._index_of)
        self.fps = self._frame_rate(pts)

    def _frame_rate(self, pts: list[int | None]) -> float:
        s = self._stream
        for rate in (s.average_rate, s.guessed_rate, s.base_rate):
            if rate and float(rate) > 0 and math.isfinite(float(rate)):
                return float(rate)
        if self._pts_mode and len(pts) > 1 and s.time_base:
            span = (self._sorted_pts[-1] - self._sorted_pts[0]) * Fraction(s.time_base)
            if span > 0:
                return float((len(pts) - 1) / span)
        raise CorruptVideoError("the video stream has no usable frame rate", self.path)

    # --- reading ----------------------------------------------------------------------------------
    def read(self, indices: list[int]) -> np.ndarray:
        """(T, H, W, 3) uint8 for exactly these strictly increasing indices, or a DecodeError."""
        import av

        if not indices:
            raise ValueError("no frame indices to read")
        if indices[-1] >= self.num_frames:
            raise FrameIndexError(
                f"frame {indices[-1]} asked for, but the video has {self.num_frames} frames", self.path
            )
        try:
            got = self._decode_targets(indices)
        except av.error.EOFError as exc:
            raise TruncatedVideoError(f"the data ends early ({exc})", self.path) from exc
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(f"the decoder rejected the data ({exc})", self.path) from exc
        missing = [i for i in indices if i not in got]
        if missing:
            raise TruncatedVideoError(
                f"the decoder gave no frame for {len(missing)} of {len(indices)} wanted indices "
                f"(first {missing[0]} of {self.num_frames})", self.path,
            )
        return np.stack([got[i] for i in indices])

    def _decode_targets(self, indices: list[int]) -> dict[int, np.ndarray]:
        wanted = set(indices)
        got: dict[int, np.ndarray] = {}
        frames = None
        pos = -1  # index of the furthest frame decoded
        counter = 0
        for target in indices:
            if target <= pos:
                continue  # passed without being decoded: reported as missing by the caller
            keyframe = 0
            if self._pts_mode:
                k = bisect.bisect_right(self._keyframes, target) - 1
                keyframe = self._keyframes[k] if k >= 0 else 0
            jump = self._pts_mode and keyframe > pos + _SEEK_MIN_GAP
            if frames is None or jump:
                # The index pass left the demuxer at the end: always reposition before the first read.
                self._container.seek(self._sorted_pts[keyframe] if jump else 0, stream=self._stream,
                                     backward=True, any_frame=False)
                self._stream.codec_context.flush_buffers()
                frames = self._frames()
            for frame in frames:
                if self._pts_mode:
                    idx = self._index_of.get(frame.pts)
                    if idx is None:
                        continue
                else:
                    idx, counter = counter, counter + 1
                pos = max(pos, idx)
                if idx in wanted and idx not in got:
                    got[idx] = self._to_array(frame)
                if idx >= target:
                    break
            else:
                break  # the stream ended
        return got

    def _frames(self) -> Any:
        for packet in self._container.demux(self._stream):
            yield from packet.decode()

    def _to_array(self, frame: Any) -> np.ndarray:
        k = (int(getattr(frame, "rotation", 0) or 0) // 90) % 4
        if self.resize is None:
            arr = frame.to_ndarray(format="rgb24")
        else:
            h, w = self.resize
            if k % 2:  # the coded frame is the transpose of what is shown
                h, w = w, h
            arr = frame.to_ndarray(format="rgb24", width=w, height=h)
        return np.ascontiguousarray(np.rot90(arr, k=k)) if k else arr

    # --- context manager --------------------------------------------------------------------------
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> PyAVReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_with_pyav(path: str | Path, indices: list[int], resize: tuple[int, int] | None = None) -> np.ndarray:
    with PyAVReader(path, resize) as reader:
        return reader.read(indices)


__all__ = ["DecodeError", "PyAVReader", "looks_like_container", "read_with_pyav"]

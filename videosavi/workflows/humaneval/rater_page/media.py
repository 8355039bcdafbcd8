"""The videos of a rater sheet: found under their source roots, checked, and shown as frames where
the browser cannot play them.

A sheet names each video as `SOURCE/PATH`; only those files are ever served, looked up by item
number (never by a path from the request) and through `builders.source_files.source_path`, so a
link out of a source root is refused as everywhere else. Whether the browser can play a file is
decided from its container and codec (PyAV); the page also falls back on its own when playback
fails. The fallback decodes frames of the clip span with the project's decoder
(`builders.frames.decode_frames`) in a worker process (`FrameDecoderPool`), so a hostile file that
hangs or crashes a decoder costs that item's frames, not the server and not the rater's answers.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosavi.builders.decode.errors import DecodeError, MissingFileError
from videosavi.builders.decode.source_files import source_path

FALLBACK_FRAMES = 16
FRAME_MAX_SIDE = 480
# Containers (by file suffix) and the video codecs (PyAV names) Chromium and Firefox play in them.
PLAYABLE: dict[str, frozenset[str]] = {
    ".mp4": frozenset({"h264", "vp9", "av1"}), ".m4v": frozenset({"h264", "vp9", "av1"}),
    ".mov": frozenset({"h264"}),
    ".webm": frozenset({"vp8", "vp9", "av1"}), ".mkv": frozenset({"vp8", "vp9", "av1"}),
    ".ogv": frozenset({"theora", "vp8"}),
}
MEDIA_TYPES: dict[str, str] = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/mp4", ".webm": "video/webm",
                               ".mkv": "video/webm", ".ogv": "video/ogg"}


@dataclass(frozen=True)
class VideoCheck:
    """What the page needs to know about one item's video before it plays it."""

    path: Path | None
    playable: bool
    problem: str | None = None  # one line for the page: missing, outside its root, not a video, ...
    codec: str | None = None

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.path.suffix.lower(), "application/octet-stream") if self.path else ""


def locate(video: str, roots: dict[str, Path]) -> Path:
    """`SOURCE/PATH` under that source's root; `DecodeError` (missing, outside the root) otherwise."""
    source, sep, rel = video.partition("/")
    if not sep or not rel:
        raise MissingFileError(f"the sheet names the video {video!r}, not SOURCE/PATH", video)
    if source not in roots:
        known = ", ".join(sorted(roots)) or "none"
        raise MissingFileError(f"no root for source {source!r} (roots given: {known}): add --video-root "
                               f"{source}=DIR", video)
    path = source_path(roots[source], rel)
    if not path.is_file():
        raise MissingFileError(f"{video} is missing (looked for {path})", str(path))
    return path


def probe_codec(path: str) -> str:
    """The first video stream's codec name (PyAV); runs in a decoder worker."""
    import av

    from videosavi.builders.decode.errors import NotAVideoError, NoVideoStreamError

    try:
        with av.open(path) as container:
            streams = container.streams.video
            if not streams:
                raise NoVideoStreamError("the file has no video stream", path)
            return str(streams[0].codec_context.name)
    except DecodeError:
        raise
    except Exception as exc:  # PyAV's FFmpegError family and OSError: not something a browser plays either
        raise NotAVideoError(f"not a readable video ({type(exc).__name__}: {exc})", path) from None


def decode_jpegs(path: str, num_frames: int, clip_start: float | None, clip_end: float | None) -> dict[str, Any]:
    """JPEG bytes of `num_frames` frames of the clip span and their times; runs in a decoder worker."""
    from PIL import Image

    from videosavi.builders.decode.frames import decode_frames

    decoded = decode_frames(path, num_frames, clip_start, clip_end)
    jpegs = []
    for frame in decoded.frames:
        image = Image.fromarray(frame)
        image.thumbnail((FRAME_MAX_SIDE, FRAME_MAX_SIDE))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=85)
        jpegs.append(buf.getvalue())
    return {"jpegs": jpegs, "times": list(decoded.sample.frame_timestamps)}


def _task(kind: str, path: str, *args: Any) -> Any:
    return probe_codec(path) if kind == "probe" else decode_jpegs(path, *args)


@dataclass
class SheetMedia:
    """Checks and fallback frames for one sheet's videos, cached per item (a few items of frames)."""

    videos: list[str]
    roots: dict[str, Path]
    clips: list[tuple[float | None, float | None]]
    timeout_s: float = 60.0
    _checks: dict[int, VideoCheck] = field(default_factory=dict)
    _frames: OrderedDict[int, dict[str, Any]] = field(default_factory=OrderedDict)
    _pool: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _run(self, path: Path, kind: str, *args: Any) -> Any:
        """One task in the decoder pool (started on first use); a DecodeError comes back, never raised."""
        from videosavi.builders.decode.pool import FrameDecoderPool

        with self._lock:
            if self._pool is None:
                self._pool = FrameDecoderPool(workers=1, timeout_s=self.timeout_s, task_fn=_task).__enter__()
            future = self._pool.submit(kind, str(path), *args)
        return self._pool.outcome(future, str(path))

    def missing(self) -> list[tuple[int, str]]:
        """(item index, problem) of every video that cannot be found: checked up front, cheaply."""
        out = []
        for i, video in enumerate(self.videos):
            try:
                locate(video, self.roots)
            except DecodeError as exc:
                out.append((i, exc.message))
        return out

    def check(self, index: int) -> VideoCheck:
        if index in self._checks:
            return self._checks[index]
        try:
            path = locate(self.videos[index], self.roots)
        except DecodeError as exc:
            result = VideoCheck(None, False, exc.message)
        else:
            codec = self._run(path, "probe")
            if isinstance(codec, DecodeError):
                result = VideoCheck(path, False, f"{self.videos[index]} cannot be played: {codec.message}")
            else:
                result = VideoCheck(path, codec in PLAYABLE.get(path.suffix.lower(), frozenset()), None, codec)
        self._checks[index] = result
        return result

    def frames(self, index: int) -> dict[str, Any]:
        """{"jpegs": [...], "times": [...]} of the clip span, or {"problem": why}."""
        if index in self._frames:
            self._frames.move_to_end(index)
            return self._frames[index]
        check = self.check(index)
        if check.path is None:
            return {"problem": check.problem}
        start, end = self.clips[index]
        result = self._run(check.path, "frames", FALLBACK_FRAMES, start, end)
        if isinstance(result, DecodeError):
            out: dict[str, Any] = {"problem": f"{self.videos[index]} cannot be decoded: {result.message}"}
        else:
            out = result
        self._frames[index] = out
        while len(self._frames) > 4:
            self._frames.popitem(last=False)
        return out

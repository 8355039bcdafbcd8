"""Why a video could not be decoded, as exception classes with a stable `reason` code.

The builder records the code as the video's skip reason (`skipped.jsonl`, `build.json` counts) and
goes on with the next video, so codes are part of the data contract: never rename one. The classes
cross process boundaries (decoding runs in pool workers), hence the explicit `__reduce__`.
"""

from __future__ import annotations

from typing import ClassVar

from videosavi.errors import VideosaviError


class DecodeError(VideosaviError):
    """A video that yields no frames; `reason` says why in one stable word."""

    reason: ClassVar[str] = "decode_error"

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __reduce__(self) -> tuple:
        return (type(self), (self.message, self.path))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MissingFileError(DecodeError):
    reason = "missing_file"


class UnreadableFileError(DecodeError):
    """The file exists but cannot be opened (permissions, a directory, a broken link)."""

    reason = "unreadable"


class EmptyFileError(DecodeError):
    reason = "empty_file"


class NotAVideoError(DecodeError):
    """Bytes that no demuxer recognises: text renamed .mp4, random data, an HTML error page."""

    reason = "not_a_video"


class NoVideoStreamError(DecodeError):
    """A valid container without a video stream (audio-only)."""

    reason = "no_video_stream"


class TruncatedVideoError(DecodeError):
    """The container promises more than the file holds (an interrupted download or copy)."""

    reason = "truncated"


class CorruptVideoError(DecodeError):
    """The decoder rejected the data part-way (damaged packets)."""

    reason = "corrupt"


class ClipOutOfRangeError(DecodeError):
    """The manifest's clip span holds no frame of the file (e.g. it starts after the video ends)."""

    reason = "clip_out_of_range"


class FrameIndexError(DecodeError):
    """Stored frame indices lie beyond the file's frames: the file is not the one the pairs were made from."""

    reason = "index_out_of_range"


class DecodeTimeoutError(DecodeError):
    """The worker ran past the per-video timeout and was killed."""

    reason = "timeout"


class DecoderCrashError(DecodeError):
    """The worker process died (segfault, abort, out-of-memory kill) while decoding this video."""

    reason = "decoder_crash"


class OutsideRootError(DecodeError):
    """The path, once its symbolic links are followed, leaves the source's root (and the source does
    not set `follow_symlinks: true`): the file is never opened."""

    reason = "outside_root"


class ChangedSinceSamplingError(DecodeError):
    """The bytes the decoder read hash differently from the hash the sample recorded (the file was
    replaced or rewritten after `savi sample` or before a resume), or changed while being decoded."""

    reason = "changed_since_sampling"


class FramesTooLargeError(DecodeError):
    """The frames asked for would not fit in memory (a resize of thousands of pixels a side, from a crafted
    config or revision): refused before any decoder allocates them."""

    reason = "frames_too_large"


DECODE_REASONS: tuple[str, ...] = tuple(
    cls.reason for cls in (DecodeError, MissingFileError, UnreadableFileError, EmptyFileError, NotAVideoError,
                           NoVideoStreamError, TruncatedVideoError, CorruptVideoError, ClipOutOfRangeError,
                           FrameIndexError, DecodeTimeoutError, DecoderCrashError, OutsideRootError,
                           ChangedSinceSamplingError, FramesTooLargeError)
)

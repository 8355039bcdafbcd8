"""Re-decode exactly the frames a pair was made from (its stored indices, the build's resize).

A fresh uniform sampling could pick other frames than the model saw when it answered, and DPO would
then optimise answers against a different video. The builder's `decode_at_indices` reads the stored
indices with the same decoder stack the build used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videosavi.errors import TrainingDataError


def decode_row_frames(video_file: str | Path, frame_indices: list[int],
                      resize: tuple[int, int] | None = None) -> Any:
    """(T, H, W, 3) uint8 frames; a decoder failure is a `TrainingDataError` naming file and reason."""
    from videosavi.builders.frames import DecodeError, decode_at_indices

    try:
        return decode_at_indices(str(video_file), list(frame_indices), resize=resize)
    except DecodeError as exc:
        reason = getattr(exc, "reason", "decode_error")
        raise TrainingDataError(
            f"cannot decode {video_file} ({reason}): it passed the pre-training checks, so the file changed "
            f"or the decoder differs from the build's; {exc}"
        ) from exc


def decode_failure(video_file: str | Path, frame_indices: list[int], resize: tuple[int, int] | None) -> str | None:
    """The decoder's reason code if the stored frames cannot be read, else None (frames are dropped)."""
    from videosavi.builders.frames import DecodeError, decode_at_indices

    try:
        decode_at_indices(str(video_file), list(frame_indices), resize=resize)
    except DecodeError as exc:
        return str(getattr(exc, "reason", "decode_error"))
    return None

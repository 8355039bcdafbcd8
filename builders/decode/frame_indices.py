"""Which frames of a video the model sees: N uniformly spaced indices within the clip span.

Pure integer arithmetic (no floating-point rounding of the spacing), so every machine picks the same
frames for the same video; the indices are stored in each pair and training re-decodes exactly them.
"""

from __future__ import annotations

import math

from videosavi.builders.decode.errors import ClipOutOfRangeError

_EPS = 1e-6  # in frames: a clip boundary that lands on a frame's timestamp includes that frame


def clip_frame_range(total_frames: int, fps: float | None = None, clip_start: float | None = None,
                     clip_end: float | None = None) -> range:
    """Frames whose timestamp `i / fps` lies in [clip_start, clip_end] (both ends inclusive).

    No clip means the whole video. A clip that ends after the video is cut at the last frame; one
    that holds no frame at all raises `ClipOutOfRangeError` (the caller records it as a skip).
    """
    if total_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {total_frames}")
    if clip_start is None and clip_end is None:
        return range(total_frames)
    if fps is None or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"a clip span needs the video's frame rate, got fps={fps}")
    if clip_start is not None and clip_end is not None and clip_end <= clip_start:
        raise ValueError(f"clip_end ({clip_end}) must be after clip_start ({clip_start})")
    first = max(0, math.ceil((clip_start or 0.0) * fps - _EPS))
    stop = total_frames if clip_end is None else min(total_frames, math.floor(clip_end * fps + _EPS) + 1)
    if first >= stop:
        raise ClipOutOfRangeError(
            f"clip [{clip_start}, {clip_end}] s holds no frame of a {total_frames}-frame video at {fps:g} fps"
        )
    return range(first, stop)


def spread(span: range, num_frames: int) -> list[int]:
    """`num_frames` indices spread evenly over `span`, first and last frame included.

    Index i is round(i * (len-1) / (N-1)) from the start, rounded half up in integers. A span with no
    more than N frames gives all of its frames (fewer than N): padding with repeats would show the
    model the same frame twice and break the strictly-increasing rule of `FrameSample`. N = 1 gives the
    middle frame.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if len(span) <= num_frames:
        return list(span)
    a, last = span.start, span[-1] - span.start
    if num_frames == 1:
        return [a + last // 2]
    d = num_frames - 1
    return [a + (2 * i * last + d) // (2 * d) for i in range(num_frames)]


def uniform_indices(total_frames: int, num_frames: int, fps: float | None = None, clip_start: float | None = None,
                    clip_end: float | None = None) -> list[int]:
    """N uniformly spaced, strictly increasing frame indices inside the clip span (or the whole video)."""
    return spread(clip_frame_range(total_frames, fps, clip_start, clip_end), num_frames)


def frame_timestamps(indices: list[int], fps: float) -> list[float]:
    """Seconds from the start of the file, `index / fps` (the average rate; exact for constant-rate video)."""
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    return [round(i / fps, 6) for i in indices]

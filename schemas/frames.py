"""Exactly which frames the model saw; training re-decodes these indices, not a fresh sample."""

from __future__ import annotations

from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FrameSample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_indices: list[int] = Field(min_length=1)
    frame_timestamps: list[float] = Field(min_length=1, description="seconds from the start of the file")
    num_frames: int = Field(gt=0, description="frames in the whole video (container count)")

    @model_validator(mode="after")
    def _check(self) -> FrameSample:
        check_frame_indices(self.frame_indices, self.frame_timestamps, self.num_frames)
        return self


def check_frame_indices(indices: list[int], timestamps: list[float], num_frames: int) -> None:
    """Indices inside the video, strictly increasing, one timestamp each, timestamps non-decreasing."""
    if len(indices) != len(timestamps):
        raise ValueError(f"{len(indices)} frame indices but {len(timestamps)} timestamps")
    for a, b in pairwise(indices):
        if b <= a:
            raise ValueError(f"frame indices must be strictly increasing, got {a} then {b}")
    if indices and (indices[0] < 0 or indices[-1] >= num_frames):
        raise ValueError(f"frame indices must lie in [0, {num_frames}), got {indices[0]}..{indices[-1]}")
    for t0, t1 in pairwise(timestamps):
        if t1 < t0:
            raise ValueError(f"frame timestamps must not decrease, got {t0} then {t1}")
    if timestamps and timestamps[0] < 0:
        raise ValueError("frame timestamps must be >= 0")


# A Video-LLM's frames are a few hundred pixels a side; 4096 leaves room for any real use, while a crafted
# `resize: [20000, 20000]` (1.2 GB per frame) is refused before a decoder allocates anything.
MAX_RESIZE_SIDE = 4096


def check_resize(value: object) -> tuple[int, int] | None:
    """`resize` as (height, width) of whole pixels in [1, MAX_RESIZE_SIDE], or None for native size;
    ValueError naming what is wrong otherwise (a config, or a revision's build.json, is where it came from)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"resize is [height, width] in whole pixels or null, got {str(value)[:60]!r}")
    h, w = value
    if not (0 < h <= MAX_RESIZE_SIDE and 0 < w <= MAX_RESIZE_SIDE):
        raise ValueError(f"resize is (height, width) in pixels, both above 0 and at most {MAX_RESIZE_SIDE}; "
                         f"got {[h, w]} (use null for the native size)")
    return (h, w)

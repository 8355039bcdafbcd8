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

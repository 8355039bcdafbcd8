"""A video (or clip of one) as sampled from a source manifest."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from videosavi.schemas.paths import RelativePosixPath
from videosavi.schemas.text import NonEmptyStr


def make_video_uid(source: str, video_id: str, clip_start: float | None, clip_end: float | None) -> str:
    """`source/id`, plus a media-fragment suffix for trimmed clips (STAR cuts one Charades video
    into several clips, and each clip is a distinct sample)."""
    uid = f"{source}/{video_id}"
    if clip_start is not None or clip_end is not None:
        start = f"{clip_start:.2f}" if clip_start is not None else ""
        end = f"{clip_end:.2f}" if clip_end is not None else ""
        uid += f"#t={start},{end}"
    return uid


class VideoRef(BaseModel):
    """One row of `videos.parquet`: where a video lives and what we know about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="source name from the config")
    video_id: NonEmptyStr
    video_path: RelativePosixPath = Field(description="POSIX path relative to the source's root")
    clip_start: float | None = Field(default=None, ge=0, description="clip start in seconds")
    clip_end: float | None = Field(default=None, ge=0, description="clip end in seconds")
    duration: float | None = Field(default=None, ge=0, description="duration in seconds of the file")
    fps: float | None = Field(default=None, gt=0)
    num_frames: int | None = Field(default=None, ge=0, description="frame count read from the container")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    available: bool = True
    unavailable_reason: str | None = None
    caption: str | None = Field(
        default=None, description="the manifest's own caption, if any (never used as supervision)"
    )

    @model_validator(mode="after")
    def _clip_order(self) -> VideoRef:
        if self.clip_start is not None and self.clip_end is not None and self.clip_end <= self.clip_start:
            raise ValueError(f"clip_end ({self.clip_end}) must be after clip_start ({self.clip_start})")
        if not self.available and not self.unavailable_reason:
            raise ValueError("an unavailable video needs an unavailable_reason")
        return self

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects decorators over @property
    @property
    def video_uid(self) -> str:
        return make_video_uid(self.source, self.video_id, self.clip_start, self.clip_end)

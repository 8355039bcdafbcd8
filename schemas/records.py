"""Side records of a build: videos skipped and model outputs quarantined (nothing is lost silently)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VideoSkip(BaseModel):
    """A sampled video that produced no pairs, and why (`reason` is a stable code)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    video_uid: str
    source: str
    video_path: str
    reason: str = Field(description="stable code, e.g. decode_error, missing_file, timeout")
    message: str = ""


class QuarantineRecord(BaseModel):
    """A model output that stayed malformed after the retries, kept with its raw text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    video_uid: str
    stage: str
    question: str | None = None
    attempts: int = Field(ge=1)
    reason: str
    raw_text: str

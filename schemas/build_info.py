"""`build.json`: everything needed to know how a run's data were made, and to check its counts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str
    name_or_path: str
    revision: str = Field(description="hub revision, or 'local:<weights hash>' for a directory")
    architecture: str | None = None


class StageCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: int = 0
    cached: int = 0
    retries: int = 0
    quarantined: int = 0


class SourceFill(BaseModel):
    """How one source met its pairs: requested (quota x questions per video) against delivered, and
    how many videos of its seeded order that took."""

    model_config = ConfigDict(extra="forbid")

    quota_videos: int = Field(default=0, description="videos the config asks of this source")
    requested_pairs: int = Field(default=0, description="quota x (spatial + temporal)")
    requested_by_type: dict[str, int] = Field(default_factory=dict)
    delivered_pairs: int = 0
    delivered_by_type: dict[str, int] = Field(default_factory=dict)
    videos_used: int = Field(default=0, description="videos whose pairs were needed, reserve ones included")
    reserve_videos_used: int = Field(default=0, description="videos beyond the quota that replaced lost pairs")
    reserve_videos_unused: int = Field(default=0, description="reserve videos built but not needed in the end")
    surplus_pairs: int = Field(default=0, description="pairs dropped because their type was already met")
    shortfall_pairs: int = Field(default=0, description="requested - delivered (the manifest ran out, or pending)")
    pending_videos: int = Field(default=0, description="videos left pending by model-call errors")


class BuildCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    videos_sampled: int = 0
    videos_done: int = 0
    videos_skipped: int = 0
    questions: int = 0
    pairs: int = 0
    pairs_by_source: dict[str, int] = Field(default_factory=dict)
    pairs_by_question_type: dict[str, int] = Field(default_factory=dict)
    pairs_by_severity: dict[str, int] = Field(default_factory=dict)
    skip_reasons: dict[str, int] = Field(default_factory=dict, description="videos skipped, by reason")
    no_pair_reasons: dict[str, int] = Field(default_factory=dict, description="questions without a pair, by reason")
    filtered: dict[str, int] = Field(default_factory=dict, description="pairs removed by curation, by reason code")
    stages: dict[str, StageCounts] = Field(default_factory=dict)
    sources: dict[str, SourceFill] = Field(
        default_factory=dict, description="requested vs delivered pairs and reserve videos, per source"
    )


class RetrospectiveInfo(BaseModel):
    """Where a retrospective build's previous descriptions came from, and how many videos used one."""

    model_config = ConfigDict(extra="forbid")

    previous: str | None = Field(default=None, description="the previous iteration's data (run dir or repo@rev "
                                 "and its commit); none in iteration 1")
    previous_fingerprint: str | None = Field(default=None, description="hash of the previous descriptions read")
    previous_descriptions: int = Field(default=0, description="videos the previous data describes")
    videos_described: int = Field(default=0, description="videos whose describe stage succeeded")
    videos_with_previous: int = Field(default=0, description="of those, videos revised from a previous description")


class BuildInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    iteration: int = Field(ge=1)
    builder_version: str
    videosavi_version: str
    created_at: str
    seed: int
    num_frames: int
    config: dict[str, Any]
    config_hash: str
    model: ModelInfo
    prompt_version: str
    prompts: dict[str, str] = Field(description="template name -> content hash")
    counts: BuildCounts
    timings: dict[str, float] = Field(default_factory=dict)
    shards: list[str] = Field(default_factory=list)
    shard_index: int | None = None
    num_shards: int | None = None
    limit_videos: int | None = Field(default=None, description="--limit-videos of a preview build (no reserve)")
    retrospective: RetrospectiveInfo | None = Field(default=None, description="set by retrospective builds only")
    stopped: str | None = Field(
        default=None, description="one line: why the build stopped before completing (model calls failing, too many "
        "videos lost); None for a build that completed. Publishing refuses a run that has it")
    allow_shortfall: bool = Field(
        default=False, description="built with --allow-shortfall: a source whose reserve ran out is published "
        "with fewer pairs than requested (the card says so) instead of failing the build")

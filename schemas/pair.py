"""The published record: one row = one preference pair (DESIGN.md, "The record")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from videosavi.schemas.critique import CritiqueIssue, pair_severity
from videosavi.schemas.diff import diff_spans
from videosavi.schemas.enums import PairSeverity, QuestionType
from videosavi.schemas.frames import check_frame_indices
from videosavi.schemas.messages import ChatMessage, video_blocks
from videosavi.schemas.paths import RelativePosixPath
from videosavi.schemas.text import NonEmptyStr, normalize_text, word_count
from videosavi.schemas.video import make_video_uid


class DiffSpan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    side: Literal["rejected", "chosen"]
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


def make_pair_id(builder_version: str, iteration: int, video_uid: str, question: str) -> str:
    """Stable across runs and machines: the same question on the same video in the same iteration."""
    from videosavi.schemas._hash import short_sha256

    return short_sha256(f"{builder_version}\x1f{iteration}\x1f{video_uid}\x1f{normalize_text(question)}", 20)


class PreferencePair(BaseModel):
    """Rejected = the model's initial answer a0; chosen = its answer refined after self-critique a1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair_id: str = Field(pattern=r"^[0-9a-f]{20}$", description="hash of builder version, iteration, video, question")
    iteration: int = Field(ge=1, description="self-training iteration that produced the pair")
    video_uid: str = Field(description="source/video_id, plus #t=start,end for a trimmed clip")
    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="source name: star, vidal, webvid, ...")
    video_id: NonEmptyStr = Field(description="the video's id in its source (Charades id, YouTube id, ...)")
    video_path: RelativePosixPath = Field(description="POSIX path relative to the source's local root")
    clip_start: float | None = Field(default=None, ge=0, description="clip start in seconds (STAR trims videos)")
    clip_end: float | None = Field(default=None, ge=0, description="clip end in seconds")
    video_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the video file that was read")
    video_num_frames: int = Field(gt=0, description="frames in the whole file, from the container")
    frame_indices: list[int] = Field(min_length=1, description="exactly the frames the model saw")
    frame_timestamps: list[float] = Field(min_length=1, description="their times in seconds from the file start")
    question_type: QuestionType = Field(description="spatial or temporal")
    question: NonEmptyStr = Field(description="the question the model asked itself")
    prompt: list[ChatMessage] | None = Field(
        default=None,
        description="the exact chat messages a0 was generated from (one user turn: a video block, then the "
        "answer template rendered for the question), in TRL's conversational form; null in rows built before "
        "builder g3",
    )
    rejected: NonEmptyStr = Field(description="the initial answer a0 (dispreferred)")
    chosen: NonEmptyStr = Field(description="the answer refined after self-critique a1 (preferred)")
    critique: NonEmptyStr = Field(description="the critic's summary")
    issues: list[CritiqueIssue] = Field(
        description="statement, reason, evidence, severity, error_type per issue; empty when the critique "
        "found none (kept by the `paper` curation profile)"
    )
    severity: PairSeverity = Field(description="critical if any issue is critical, minor if it has issues, none "
                                   "if it has none")
    chosen_words: int = Field(ge=0, description="words in chosen (length-bias analysis)")
    rejected_words: int = Field(ge=0, description="words in rejected")
    diff_spans: list[DiffSpan] = Field(
        default_factory=list, description="differing phrases between rejected and chosen, with char offsets"
    )
    description: NonEmptyStr | None = Field(
        default=None, description="the model's own detailed description of the video, shown to its critic "
        "(ISR-DPO's self-retrospective context; null unless built with retrospective: true)"
    )
    model: NonEmptyStr = Field(description="model that generated the pair")
    model_revision: str = Field(description="its hub revision, or local:<weights hash>")
    prompt_version: NonEmptyStr = Field(description="hash of the four prompt templates")
    generation: str = Field(description="canonical JSON of the sampling parameters of each stage")
    builder_version: NonEmptyStr = Field(description="version of the sampling, frames and stage logic")
    created_at: str = Field(description="ISO 8601 time the pair was made")

    @field_validator("created_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        datetime.fromisoformat(value)
        return value

    @model_validator(mode="after")
    def _record_rules(self) -> PreferencePair:
        if normalize_text(self.chosen) == normalize_text(self.rejected):
            raise ValueError("chosen and rejected are the same answer after normalisation")
        expected = pair_severity(self.issues)
        if self.severity != expected:
            raise ValueError(f"severity {self.severity!r} disagrees with its issues (expected {expected!r})")
        check_frame_indices(self.frame_indices, self.frame_timestamps, self.video_num_frames)
        if self.chosen_words != word_count(self.chosen) or self.rejected_words != word_count(self.rejected):
            raise ValueError("chosen_words / rejected_words do not match the texts")
        uid = make_video_uid(self.source, self.video_id, self.clip_start, self.clip_end)
        if self.video_uid != uid:
            raise ValueError(f"video_uid {self.video_uid!r} does not match source/video_id/clip ({uid!r})")
        if self.clip_start is not None and self.clip_end is not None and self.clip_end <= self.clip_start:
            raise ValueError("clip_end must be after clip_start")
        if self.prompt is not None:
            if not self.prompt or self.prompt[-1].role != "user":
                raise ValueError("prompt must end with the user turn a0 answered")
            if video_blocks(self.prompt) != 1:
                raise ValueError("prompt must hold exactly one video block (where the frames go)")
        for span in self.diff_spans:
            text = self.rejected if span.side == "rejected" else self.chosen
            if span.end > len(text) or text[span.start : span.end] != span.text:
                raise ValueError(f"diff span {span.start}:{span.end} does not match the {span.side} text")
        expected_id = make_pair_id(self.builder_version, self.iteration, self.video_uid, self.question)
        if self.pair_id != expected_id:
            raise ValueError("pair_id is not the hash of (builder_version, iteration, video_uid, question)")
        return self

    @classmethod
    def build(cls, **fields: Any) -> PreferencePair:
        """Construct a pair, deriving pair_id, video_uid, severity, word counts and diff spans.

        Derived fields are computed here once, so producers cannot get them inconsistent; the
        validators above still check them on every load.
        """
        f = dict(fields)
        f.setdefault("video_uid", make_video_uid(f["source"], f["video_id"], f.get("clip_start"), f.get("clip_end")))
        issues = [i if isinstance(i, CritiqueIssue) else CritiqueIssue.model_validate(i) for i in f["issues"]]
        f["issues"] = issues
        f.setdefault("severity", pair_severity(issues))
        f.setdefault("chosen_words", word_count(f["chosen"]))
        f.setdefault("rejected_words", word_count(f["rejected"]))
        f.setdefault("diff_spans", diff_spans(f["rejected"], f["chosen"]))
        f.setdefault("created_at", datetime.now().astimezone().isoformat(timespec="seconds"))
        f.setdefault(
            "pair_id", make_pair_id(f["builder_version"], f["iteration"], f["video_uid"], f["question"])
        )
        return cls.model_validate(f)

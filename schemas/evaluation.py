"""Records of `savi eval`: the fixed eval set, a model's answers to it, and a judge's verdicts.

The eval set is the paper's error analysis (section 4.2, Table 2) made repeatable: a fixed set of
questions about held-out videos, each iteration's model answers them, and a judge model lists the
errors of every answer by the six error types and severity. The judge's output model `Judgement` is
also its JSON Schema for constrained decoding (via `json_schema.py`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field, model_validator

from videosavi.schemas.build_info import ModelInfo
from videosavi.schemas.enums import ErrorType, QuestionType, Severity
from videosavi.schemas.frames import check_frame_indices
from videosavi.schemas.limits import ISSUE_FIELD_MAX_CHARS, SUMMARY_MAX_CHARS
from videosavi.schemas.paths import RelativePosixPath
from videosavi.schemas.records import VideoSkip
from videosavi.schemas.text import NonEmptyStr
from videosavi.schemas.video import make_video_uid

MAX_JUDGED_ERRORS = 8
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
JudgeText = Annotated[str, StringConstraints(min_length=1, max_length=ISSUE_FIELD_MAX_CHARS, strip_whitespace=True)]


class EvalQuestion(BaseModel):
    """One row of an eval set's `questions.parquet`: a question about exactly these frames of a video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question_id: str = Field(pattern=r"^q[0-9]{4,}$", description="stable id within the set (q0001, ...)")
    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    video_id: NonEmptyStr
    video_path: RelativePosixPath = Field(description="POSIX path relative to the source's root")
    clip_start: float | None = Field(default=None, ge=0)
    clip_end: float | None = Field(default=None, ge=0)
    video_sha256: Sha256
    video_num_frames: int = Field(gt=0)
    frame_indices: list[int] = Field(min_length=1, description="the frames every model (and the judge) sees")
    frame_timestamps: list[float] = Field(min_length=1)
    question_type: QuestionType
    question: NonEmptyStr

    @model_validator(mode="after")
    def _frames(self) -> EvalQuestion:
        check_frame_indices(self.frame_indices, self.frame_timestamps, self.video_num_frames)
        return self

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects decorators over @property
    @property
    def video_uid(self) -> str:
        return make_video_uid(self.source, self.video_id, self.clip_start, self.clip_end)


class EvalSetInfo(BaseModel):
    """`evalset.json`: how the set was drawn and whose questions it holds.

    `set_id` names the draw (config hash, seed, holdout rule, videos and frames); `question_version`
    names the questions. Answers carry both, and the judge refuses to mix answers of different sets.
    """

    model_config = ConfigDict(extra="forbid")

    set_id: str
    question_version: str
    name: str = Field(description="the config's name")
    seed: int
    config_hash: str = Field(description="data hash of the build config whose holdout the set came from")
    protocol: Literal["held-out", "paper"] = Field(
        default="held-out", description="held-out: questions about videos no build of the config can use; paper: "
        "questions of iteration 1's published pairs, as the paper's Table 2 did")
    holdout: dict[str, Any] = Field(description="the config's eval section (holdout share and salt); empty for "
                                    "the paper protocol")
    n_questions: int
    by_question_type: dict[str, int]
    by_source: dict[str, int]
    questions_from: Literal["model", "file", "revision"]
    questions_revision: str | None = Field(
        default=None, description="paper protocol: the revision the questions came from, as ORG/NAME@REV (sha)")
    question_model: ModelInfo | None = Field(default=None, description="the model that wrote the questions")
    question_prompt_hash: str | None = None
    num_frames: int
    resize: list[int] | None = None
    source_roots: dict[str, str] = Field(description="source -> folder of its videos, relative to the data root")
    follow_symlinks: list[str] = Field(default_factory=list,
                                       description="sources whose symbolic links may lead outside their root")
    answer_params: dict[str, Any] = Field(description="sampling of `savi eval answer` (the config's answer stage)")
    skipped: list[VideoSkip] = Field(default_factory=list, description="drawn videos that gave no question")
    builder_version: str
    videosavi_version: str
    created_at: str


class EvalAnswer(BaseModel):
    """One row of `answers.parquet`; `answer` is None when the model gave no usable text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question_id: str
    answer: str | None
    finish_reason: str = Field(description="stop | length, or empty when there is no answer")
    failure: str | None = Field(default=None, description="why there is no answer")


class AnswersInfo(BaseModel):
    """`answers.json`: which model answered which eval set, with what prompt and sampling."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="the column name in the judge's table, e.g. iter2")
    set_id: str
    question_version: str
    model: ModelInfo
    prompt_hash: str = Field(description="hash of the answer-stage template used")
    params: dict[str, Any]
    n_answered: int
    n_failed: int
    videosavi_version: str
    created_at: str


class JudgedError(BaseModel):
    """One error the judge found in an answer: the words, why they are wrong, then the type (Figure 12's
    output) and, when the judge was asked to rate it (`savi eval judge --severity`), its severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quote: JudgeText = Field(description="the problematic words of the answer, or what it leaves out")
    explanation: JudgeText = Field(description="why this is an error, from what the frames show")
    error_type: ErrorType
    severity: Severity | None = Field(default=None, description="critical or minor; null unless asked for")


class Judgement(BaseModel):
    """The judge's reply about one answer: the errors of Figure 12's six types, and an overall assessment.
    Its JSON Schema (with `severity` left out, or required, as the judge was asked) is what decoding is
    held to (videosavi/workflows/evaluation/judge_stage.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    errors: list[JudgedError] = Field(default_factory=list, max_length=MAX_JUDGED_ERRORS)
    assessment: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX_CHARS, strip_whitespace=True)]


JudgeStatus = Literal["judged", "unjudged", "unanswered"]


class JudgementRecord(BaseModel):
    """One row of `judgements.parquet`: the verdict on one answer of one answers file.

    `unjudged`: the judge's reply never parsed (kept with its raw text); `unanswered`: the answers
    file has no answer to judge. Both are counted apart in the table, never as zero errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    question_id: str
    question_type: QuestionType
    status: JudgeStatus
    errors: list[JudgedError] = Field(default_factory=list)
    assessment: str | None = None
    raw_text: str | None = Field(default=None, description="the judge's reply as received")
    reason: str | None = Field(default=None, description="why not judged")
    attempts: int = 0


class JudgedAnswers(BaseModel):
    """One answers file as the judge saw it."""

    model_config = ConfigDict(extra="forbid")

    label: str
    path: str
    model: ModelInfo


class JudgeInfo(BaseModel):
    """`judge.json`: the judge model, prompt and schema versions, and the answers it judged."""

    model_config = ConfigDict(extra="forbid")

    set_id: str
    question_version: str
    judge: ModelInfo
    prompt_hash: str
    schema_hash: str
    params: dict[str, Any]
    severity: bool = Field(default=False, description="the judge also rated each error critical or minor")
    answers: list[JudgedAnswers]
    videosavi_version: str
    created_at: str

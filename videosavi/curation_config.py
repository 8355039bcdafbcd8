"""`CurationConfig`: the `curation:` section of a build config, validated when the config is read
(`load_config`, `savi doctor`); the filters that read it live in `videosavi.curation`.

A core module, beside the config that holds it. It keeps the section as it was written: that is what
build.json records and what the config hash covers (a config saying `profile: paper` keeps the hash it
had while the section was a plain mapping), while the fields hold every switch with the profile applied.

Defaults are tuned for real models. The demo's tiny random-weight model writes gibberish, so the
demo config turns the content filters (refusal, restatement, length ratio) off rather than the
defaults being loosened for everyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_serializer,
    model_validator,
)

BalancePolicy = Literal["keep", "trim", "drop_video"]

# Our own list of phrases that mark an answer as a refusal or a non-answer; matched as whole words
# anywhere in the normalised answer. Keep them specific: "cannot" alone would hit real answers
# ("the man cannot reach the shelf").
DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = (
    "i cannot",
    "i can't",
    "i can not",
    "i am unable",
    "i'm unable",
    "i am not able",
    "i'm not able",
    "as an ai",
    "as a language model",
    "not possible to determine",
    "impossible to determine",
    "unable to determine",
    "cannot be determined",
    "can't be determined",
    "not possible to tell",
    "no way to tell",
    "i don't know",
    "i do not know",
    "not enough information",
    "insufficient information",
    "i'm sorry",
    "i am sorry",
)

# Issue statements that mean "nothing is wrong": a critic filling the issue list with these has
# found no issue, and a pair built on it teaches a preference that does not exist.
DEFAULT_NO_ISSUE_PHRASES: tuple[str, ...] = (
    "none",
    "n/a",
    "na",
    "nothing",
    "no issue",
    "no issues",
    "no error",
    "no errors",
    "no problem",
    "no problems",
    "not applicable",
    "the answer is correct",
    "the answer is accurate",
)

_SWITCHES = (
    "drop_duplicate_questions",
    "drop_same_answer",
    "drop_empty",
    "drop_truncated",
    "drop_refusals",
    "drop_restated",
    "drop_no_issue",
    "drop_length_ratio",
)


CurationProfile = Literal["curated", "paper"]

# What each profile changes from the field defaults (the defaults are `curated`). `paper` makes a pair of
# every question whose refined answer differs from the initial one, as the paper's pipeline does: a
# critique that found no issue still leads to a refinement, and a long answer cut by the token limit is
# kept (dropping those would bias the rejected side toward short answers). Unparseable or
# schema-invalid replies never become pairs anyway; empty answers and chosen == rejected cannot.
PROFILES: dict[str, dict[str, Any]] = {
    "curated": {},
    "paper": {
        "drop_duplicate_questions": False,
        "drop_truncated": False,
        "drop_refusals": False,
        "drop_restated": False,
        "drop_no_issue": False,
        "drop_length_ratio": False,
        "balance": "keep",
    },
}


class CurationConfig(BaseModel):
    """Every filter has its own switch; a profile sets them all at once (keys given beside it win), and
    `enabled: false` turns all of them off (and balance to keep)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: CurationProfile = Field(
        default="curated",
        description="curated: every filter below; paper: a pair from every question whose refined answer differs "
        "from the initial one (only empty answers and chosen equal to rejected are dropped)",
    )
    enabled: bool = Field(default=True, description="master switch; false = keep everything")
    drop_duplicate_questions: bool = Field(default=True, description="exact and near-duplicate questions per video")
    question_similarity: float = Field(
        default=0.9, gt=0, le=1,
        description="near-duplicate when the word-sequence similarity (difflib ratio) is at least this",
    )
    drop_same_answer: bool = Field(default=True, description="chosen equal to rejected after normalisation")
    drop_empty: bool = Field(default=True, description="answers with fewer than min_answer_words words")
    min_answer_words: int = Field(default=1, ge=1)
    drop_truncated: bool = Field(
        default=True, description="answers cut off by the token limit (counted as truncated_answer; paper: kept)")
    drop_refusals: bool = Field(default=True, description="answers containing a refusal phrase")
    refusal_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_REFUSAL_PHRASES))
    drop_restated: bool = Field(default=True, description="answers that only restate the question")
    restate_max_new_words: int = Field(
        default=0, ge=0, description="an answer with at most this many content words not in the question restates it"
    )
    drop_no_issue: bool = Field(
        default=True, description="critiques that found no issue: an empty issue list, or issues that are all "
        "'none'-like (counted as no_issue; paper: refined anyway)")
    no_issue_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_NO_ISSUE_PHRASES))
    drop_length_ratio: bool = Field(default=True, description="chosen/rejected word ratio outside the band")
    length_ratio_min: float = Field(default=0.5, gt=0)
    length_ratio_max: float = Field(default=2.5, gt=0)
    length_ratio_min_words: int = Field(
        default=4, ge=0, description="apply the band only when both answers have at least this many words"
    )
    balance: BalancePolicy = Field(
        default="trim", description="per-video spatial/temporal balance: keep | trim | drop_video"
    )
    balance_per_type: int | None = Field(
        default=None, ge=1, description="expected pairs per type and video (e.g. 3); null = only equalise"
    )
    _given: dict[str, Any] = PrivateAttr(default_factory=dict)  # the section as written

    @model_validator(mode="wrap")
    @classmethod
    def _keep_given(cls, data: Any, handler: ModelWrapValidatorHandler[CurationConfig]) -> CurationConfig:
        cfg = handler(data)
        if isinstance(data, Mapping):
            cfg.__pydantic_private__["_given"] = dict(data)  # type: ignore[index]  # set by PrivateAttr above
        return cfg

    @model_serializer(mode="wrap")
    def _as_given(self, handler: Any) -> dict[str, Any]:
        """The section as written (see the module docstring)."""
        return dict(self._given)

    def __eq__(self, other: object) -> bool:
        """The same switches, however they were written."""
        return isinstance(other, CurationConfig) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.__dict__.items())))

    @model_validator(mode="before")
    @classmethod
    def _master_switch(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("profile") in PROFILES:
            data = {**PROFILES[data["profile"]], **data}
        if isinstance(data, dict) and data.get("enabled") is False:
            data = {**data, **dict.fromkeys(_SWITCHES, False), "balance": "keep"}
        return data

    @model_validator(mode="after")
    def _band(self) -> CurationConfig:
        if self.length_ratio_min >= self.length_ratio_max:
            raise ValueError(
                f"length_ratio_min ({self.length_ratio_min}) must be below length_ratio_max ({self.length_ratio_max})"
            )
        return self


def load_curation_config(raw: Mapping[str, Any] | CurationConfig | None) -> CurationConfig:
    """A `curation:` section (as build.json records it) as a `CurationConfig`; `ConfigError` when invalid.
    A config's `curation` is one already."""
    from pydantic import ValidationError

    from videosavi.errors import ConfigError

    if isinstance(raw, CurationConfig):
        return raw
    try:
        return CurationConfig.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(f"invalid `curation:` section of the config:\n{exc}") from exc

"""The critic's output: severity-labelled issues plus a summary (paper, section 3.2 and A.9)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from videosavi.schemas.enums import ErrorType, PairSeverity, Severity
from videosavi.schemas.limits import ISSUE_FIELD_MAX_CHARS, MAX_ISSUES, SUMMARY_MAX_CHARS

IssueText = Annotated[str, StringConstraints(min_length=1, max_length=ISSUE_FIELD_MAX_CHARS, strip_whitespace=True)]


class CritiqueIssue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    statement: IssueText = Field(description="the exact problematic statement or omission")
    reason: IssueText = Field(description="why it is wrong")
    evidence: IssueText = Field(description="what in the video contradicts it or is missing")
    severity: Severity
    error_type: ErrorType


class Critique(BaseModel):
    """May hold zero issues: the `curated` profile drops such critiques (counted as `no_issue`); the
    `paper` profile refines the answer anyway and keeps the pair when the refinement differs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issues: list[CritiqueIssue] = Field(default_factory=list, max_length=MAX_ISSUES)
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX_CHARS, strip_whitespace=True)]


def pair_severity(issues: list[CritiqueIssue]) -> PairSeverity:
    """A pair is critical if any of its issues is, minor if it has issues, "none" if it has none."""
    if not issues:
        return "none"
    return "critical" if any(i.severity == "critical" for i in issues) else "minor"

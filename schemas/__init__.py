"""Pydantic models of every record videosavi reads or writes; the single source of truth.

Arrow / `datasets.Features` (for parquet) and JSON Schema (for constrained decoding) are derived from
these models in `arrow.py` and `json_schema.py`, never written by hand. Depends on nothing of ours.
"""

from __future__ import annotations

from videosavi.schemas.build_info import (
    BuildCounts,
    BuildInfo,
    ModelInfo,
    RetrospectiveInfo,
    SourceFill,
    StageCounts,
)
from videosavi.schemas.critique import Critique, CritiqueIssue
from videosavi.schemas.enums import (
    ERROR_TYPES,
    PAIR_SEVERITIES,
    QUESTION_TYPES,
    SEVERITIES,
    ErrorType,
    PairSeverity,
    QuestionType,
    Severity,
)
from videosavi.schemas.frames import FrameSample
from videosavi.schemas.pair import DiffSpan, PreferencePair
from videosavi.schemas.question import Question, question_set_model
from videosavi.schemas.records import QuarantineRecord, VideoSkip
from videosavi.schemas.video import VideoRef

__all__ = [
    "ERROR_TYPES",
    "PAIR_SEVERITIES",
    "QUESTION_TYPES",
    "SEVERITIES",
    "BuildCounts",
    "BuildInfo",
    "Critique",
    "CritiqueIssue",
    "DiffSpan",
    "ErrorType",
    "FrameSample",
    "ModelInfo",
    "PairSeverity",
    "PreferencePair",
    "QuarantineRecord",
    "Question",
    "QuestionType",
    "RetrospectiveInfo",
    "Severity",
    "SourceFill",
    "StageCounts",
    "VideoRef",
    "VideoSkip",
    "question_set_model",
]

"""Closed vocabularies of the record. Literals (not Enums) so they serialise as plain strings."""

from __future__ import annotations

from typing import Literal, get_args

QuestionType = Literal["spatial", "temporal"]
Severity = Literal["critical", "minor"]
# A pair's severity: its worst issue's, or "none" when its critique found no issue (the `paper` curation
# profile keeps such pairs: the refinement still differs from the answer).
PairSeverity = Literal["critical", "minor", "none"]
# The paper's six error categories (Table 2 / Figure 12), in the paper's order.
ErrorType = Literal[
    "factual_inaccuracy",
    "temporal_ordering",
    "spatial_relationship",
    "object_hallucination",
    "causal_reasoning",
    "detail_omission",
]
SourceKind = Literal["star", "vidal", "webvid", "folder"]

QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
SEVERITIES: tuple[str, ...] = get_args(Severity)
PAIR_SEVERITIES: tuple[str, ...] = get_args(PairSeverity)
ERROR_TYPES: tuple[str, ...] = get_args(ErrorType)

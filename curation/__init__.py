"""Curation: filters with reason codes and statistics (polars); human evaluation is a workflow (workflows/humaneval).

The filter API is imported eagerly (the build runner needs it, and it is light); statistics pull in
polars and are imported on first use (`videosavi.curation.summarize`, or `curation.stats`).
"""

from __future__ import annotations

from typing import Any

from videosavi.curation import reasons
from videosavi.curation.curate import CurationResult, curate_pairs, curate_video
from videosavi.curation.filters.questions import dedupe_questions
from videosavi.curation.predicates import critique_has_issue, is_refusal, is_truncated, restates_question, same_answer
from videosavi.curation_config import CurationConfig, load_curation_config

_LAZY = {"pairs_frame", "summarize", "compare", "DatasetStats"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from videosavi.curation import stats

        return getattr(stats, name)
    raise AttributeError(f"module 'videosavi.curation' has no attribute {name!r}")


__all__ = [
    "CurationConfig",
    "CurationResult",
    "DatasetStats",
    "compare",
    "critique_has_issue",
    "curate_pairs",
    "curate_video",
    "dedupe_questions",
    "is_refusal",
    "is_truncated",
    "load_curation_config",
    "pairs_frame",
    "reasons",
    "restates_question",
    "same_answer",
    "summarize",
]

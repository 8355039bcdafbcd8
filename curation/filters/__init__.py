"""The curation filters: question dedup, per-pair checks, per-video balance."""

from __future__ import annotations

from videosavi.curation.filters.balance import balance_video
from videosavi.curation.filters.pair_filters import PAIR_FILTERS, first_objection
from videosavi.curation.filters.questions import dedupe_questions, question_similarity

__all__ = ["PAIR_FILTERS", "balance_video", "dedupe_questions", "first_objection", "question_similarity"]

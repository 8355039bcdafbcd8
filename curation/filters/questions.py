"""Exact and near-duplicate questions within one video, decided before any answer is generated.

Similarity is difflib's ratio over the normalised word sequences: cheap, dependency-free, and
order-aware, so "is the cup left of the lamp" and "is the lamp left of the cup" (same words,
different question) stay apart where a bag-of-words Jaccard would call them identical.
"""

from __future__ import annotations

import difflib

from videosavi.curation import reasons
from videosavi.curation.predicates import text_words
from videosavi.curation_config import CurationConfig
from videosavi.schemas import Question
from videosavi.schemas.text import normalize_text


def question_similarity(a: str, b: str) -> float:
    """0..1; 1.0 for questions equal after normalisation."""
    if normalize_text(a) == normalize_text(b):
        return 1.0
    return difflib.SequenceMatcher(None, text_words(a), text_words(b), autojunk=False).ratio()


def dedupe_questions(
    questions: list[Question], cfg: CurationConfig
) -> tuple[list[Question], list[tuple[Question, str]]]:
    """Keep the first of each group of (near-)duplicates, in the given order; say why others went."""
    if not (cfg.enabled and cfg.drop_duplicate_questions):
        return list(questions), []
    kept: list[Question] = []
    dropped: list[tuple[Question, str]] = []
    for q in questions:
        reason = None
        for k in kept:
            if normalize_text(q.question) == normalize_text(k.question):
                reason = reasons.DUPLICATE_QUESTION
                break
            if question_similarity(q.question, k.question) >= cfg.question_similarity:
                reason = reasons.NEAR_DUPLICATE_QUESTION
                break
        if reason is None:
            kept.append(q)
        else:
            dropped.append((q, reason))
    return kept, dropped

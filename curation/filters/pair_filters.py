"""One check per filter on a finished pair; each returns its reason code, or None to keep the pair.

They run in the order of `PAIR_FILTERS` and the first that objects names the reason, so every
dropped pair is counted exactly once in `counts.filtered`.
"""

from __future__ import annotations

from collections.abc import Callable

from videosavi.curation import reasons
from videosavi.curation.predicates import (
    critique_has_issue,
    is_empty,
    is_refusal,
    length_ratio,
    restates_question,
    same_answer,
)
from videosavi.curation_config import CurationConfig
from videosavi.schemas import PreferencePair

PairCheck = Callable[[PreferencePair, CurationConfig], "str | None"]


def empty_answer(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    if cfg.drop_empty and any(is_empty(t, cfg.min_answer_words) for t in (pair.chosen, pair.rejected)):
        return reasons.EMPTY_ANSWER
    return None


def same_answers(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    # The schema refuses such pairs already; kept so rows built without validation are caught too.
    if cfg.drop_same_answer and same_answer(pair.chosen, pair.rejected):
        return reasons.SAME_ANSWER
    return None


def refusal(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    """Either side: a refusing chosen answer is wrong, a refusing rejected one contrasts nothing."""
    if cfg.drop_refusals and (
        is_refusal(pair.chosen, cfg.refusal_phrases) or is_refusal(pair.rejected, cfg.refusal_phrases)
    ):
        return reasons.REFUSAL
    return None


def restated(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    if cfg.drop_restated and any(
        restates_question(text, pair.question, cfg.restate_max_new_words) for text in (pair.chosen, pair.rejected)
    ):
        return reasons.RESTATES_QUESTION
    return None


def no_issue(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    if cfg.drop_no_issue and not critique_has_issue(pair, cfg.no_issue_phrases):
        return reasons.NO_ISSUE
    return None


def length_band(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    """ISR-DPO: self-judged preferences drift toward longer answers; keep the ratio in a band.

    Short answers are exempt ("No." -> "No, it is on the table." is a fix, not verbosity).
    """
    if not cfg.drop_length_ratio or min(pair.chosen_words, pair.rejected_words) < cfg.length_ratio_min_words:
        return None
    ratio = length_ratio(pair.chosen_words, pair.rejected_words)
    if ratio is None:
        return None
    if ratio > cfg.length_ratio_max:
        return reasons.LENGTH_RATIO_HIGH
    if ratio < cfg.length_ratio_min:
        return reasons.LENGTH_RATIO_LOW
    return None


PAIR_FILTERS: tuple[PairCheck, ...] = (empty_answer, same_answers, refusal, restated, no_issue, length_band)


def first_objection(pair: PreferencePair, cfg: CurationConfig) -> str | None:
    """The reason code of the first filter that drops the pair, or None."""
    if not cfg.enabled:
        return None
    for check in PAIR_FILTERS:
        reason = check(pair, cfg)
        if reason is not None:
            return reason
    return None

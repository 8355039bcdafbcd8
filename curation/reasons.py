"""Reason codes of curation: the keys of `build.json` `counts.filtered` and of the card's table.

They are stable strings (published data is counted by them), so add new ones, never rename.
"""

from __future__ import annotations

DUPLICATE_QUESTION = "duplicate_question"
NEAR_DUPLICATE_QUESTION = "near_duplicate_question"
SAME_ANSWER = "same_answer"
EMPTY_ANSWER = "empty_answer"
TRUNCATED_ANSWER = "truncated_answer"
REFUSAL = "refusal"
RESTATES_QUESTION = "restates_question"
NO_ISSUE = "no_issue"
LENGTH_RATIO_HIGH = "length_ratio_high"
LENGTH_RATIO_LOW = "length_ratio_low"
BALANCE_TRIM = "balance_trim"
BALANCE_DROP_VIDEO = "balance_drop_video"

REASONS: dict[str, str] = {
    DUPLICATE_QUESTION: "question repeats an earlier question of the same video (after normalisation)",
    NEAR_DUPLICATE_QUESTION: "question is nearly the same as an earlier question of the same video",
    SAME_ANSWER: "refined answer equals the initial answer after normalisation",
    EMPTY_ANSWER: "an answer has fewer words than the configured minimum",
    TRUNCATED_ANSWER: "an answer was cut off by the token limit",
    REFUSAL: "an answer refuses or says the question cannot be answered",
    RESTATES_QUESTION: "an answer only restates the question without adding content",
    NO_ISSUE: "the critique names no real issue",
    LENGTH_RATIO_HIGH: "chosen answer is too much longer than the rejected one (verbosity bias)",
    LENGTH_RATIO_LOW: "chosen answer is too much shorter than the rejected one",
    BALANCE_TRIM: "removed to balance spatial and temporal pairs of the video",
    BALANCE_DROP_VIDEO: "the video's pairs were unbalanced across question types and the policy drops it",
}
"""Code -> one-line meaning, for the dataset card and `savi stats`."""

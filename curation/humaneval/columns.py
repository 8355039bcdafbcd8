"""Column names of the rater sheet and the key file: the contract between `export` and `score`.

The sheet is blind: no question type, no pair id, the two answers as A and B in random order. The
key file holds what the sheet hides. The paper's pair-correctness is computed from both:

    correct  <=>  question_answerable = yes
             and  better_answer is the chosen answer (per the key)
             and  better_is_accurate = yes
             and  worse_has_clear_errors = yes
"""

from __future__ import annotations

ITEM_ID = "item_id"
ANSWERABLE = "question_answerable"
BETTER = "better_answer"
BETTER_ACCURATE = "better_is_accurate"
WORSE_ERRORS = "worse_has_clear_errors"
COMMENT = "comment"

SHEET_INFO_COLUMNS: tuple[str, ...] = (
    ITEM_ID,
    "video",
    "clip_start_s",
    "clip_end_s",
    "frame_times_s",
    "question",
    "answer_A",
    "answer_B",
)
JUDGEMENTS: tuple[str, ...] = (ANSWERABLE, BETTER, BETTER_ACCURATE, WORSE_ERRORS)
YES_NO_JUDGEMENTS: tuple[str, ...] = (ANSWERABLE, BETTER_ACCURATE, WORSE_ERRORS)
SHEET_COLUMNS: tuple[str, ...] = (*SHEET_INFO_COLUMNS, *JUDGEMENTS, COMMENT)

KEY_COLUMNS: tuple[str, ...] = (ITEM_ID, "pair_id", "chosen_is", "question_type", "video_uid")

"""Column names of the rater sheet and the key file: the contract between `export` and `score`.

The sheet is blind: no question type, no pair id, the two answers as A and B in random order. The
rater judges each answer on its own (accurate / clear errors / neither) and, apart from that, picks
the better one. The key file holds what the sheet hides. The paper's pair correctness (section 4.2)
is computed from both, with exactly its three criteria:

    correct  <=>  question_answerable = yes
             and  the verdict on the chosen answer (per the key) is `accurate`
             and  the verdict on the rejected answer is `clear errors`

The blind pick (`better_answer`) never enters correctness: it is reported as its own figure, how
often raters prefer the answer the model preferred.
"""

from __future__ import annotations

ITEM_ID = "item_id"
ANSWERABLE = "question_answerable"
VERDICT_A = "answer_A_verdict"
VERDICT_B = "answer_B_verdict"
BETTER = "better_answer"
COMMENT = "comment"
VERDICT_OF: dict[str, str] = {"A": VERDICT_A, "B": VERDICT_B}
# Columns of sheets exported before the per-answer verdicts: such sheets cannot give the three criteria.
OLD_JUDGEMENTS: tuple[str, ...] = ("better_is_accurate", "worse_has_clear_errors")

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
JUDGEMENTS: tuple[str, ...] = (ANSWERABLE, VERDICT_A, VERDICT_B, BETTER)
SHEET_COLUMNS: tuple[str, ...] = (*SHEET_INFO_COLUMNS, *JUDGEMENTS, COMMENT)

# The sheet the rater page writes adds the rater's name on every row it saves (one rater per file).
RATER = "rater"

# What the rater page and Label Studio write for each judgement (the first spelling `judgements` accepts).
YES_NO: tuple[str, ...] = ("yes", "no")
VERDICT_CHOICES: tuple[str, ...] = ("accurate", "clear errors", "neither")
AB: tuple[str, ...] = ("A", "B")

KEY_COLUMNS: tuple[str, ...] = (ITEM_ID, "pair_id", "chosen_is", "question_type", "video_uid")
# Written by export since the fingerprint (items.py); a key without it (older exports) is scored unchecked.
ITEM_FINGERPRINT = "item_sha256"
KEY_WRITE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, ITEM_FINGERPRINT)

"""One item as raters see it, whatever carries it (our CSV sheet, the rater page, a Label Studio task).

The fingerprint ties a filled sheet to the key it was exported with. Item ids repeat from one
export to the next (`item-001` in every sheet), so without it a sheet scored against another
export's key would give figures that look fine and are meaningless. It hashes what the rater was
shown (video, clip span, question, both answers), with whitespace runs folded so that a
spreadsheet that rewrites line breaks inside a cell does not count as a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from videosavi.workflows.humaneval.columns import SHEET_INFO_COLUMNS
from videosavi.workflows.humaneval.csv_io import unneutralize_cell


@dataclass(frozen=True)
class SheetItem:
    """What the sheet shows for one item (cells as exported, the spreadsheet-safety quote removed)."""

    item_id: str
    video: str
    clip_start_s: str
    clip_end_s: str
    frame_times_s: str
    question: str
    answer_A: str
    answer_B: str

    @classmethod
    def from_cells(cls, values: Mapping[str, str]) -> SheetItem:
        """From a sheet row or a Label Studio task's data (missing cells read as empty)."""
        return cls(*(unneutralize_cell(str(values.get(c) or "")).strip() if c == "item_id"
                     else unneutralize_cell(str(values.get(c) or "")) for c in SHEET_INFO_COLUMNS))

    def cells(self) -> list[str]:
        return [getattr(self, c) for c in SHEET_INFO_COLUMNS]

    @property
    def clip(self) -> tuple[float | None, float | None]:
        """The clip span in seconds (None where the sheet leaves it empty: the whole video)."""
        return _seconds(self.clip_start_s), _seconds(self.clip_end_s)

    @property
    def fingerprint(self) -> str:
        return item_fingerprint(self.video, self.clip_start_s, self.clip_end_s, self.question, self.answer_A,
                                self.answer_B)


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) and value >= 0 else None


def item_fingerprint(video: str, clip_start_s: str, clip_end_s: str, question: str, answer_a: str,
                     answer_b: str) -> str:
    """sha256 (hex, first 16 characters) of what a rater is shown for one item, whitespace-folded."""
    parts = [" ".join(str(p).split()) for p in (video, clip_start_s, clip_end_s, question, answer_a, answer_b)]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]

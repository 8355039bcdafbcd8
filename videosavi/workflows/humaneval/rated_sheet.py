"""The sheet one rater fills through the rater page (`savi humaneval serve`): read, resumed, saved.

It is the exported sheet, row for row, with the rater's judgements and a `rater` column, so
`savi humaneval score` reads it like any hand-filled sheet. Every judgement is written to disk the
moment it is given (the whole file replaced atomically, flushed first), so a crash, a killed server
or a closed tab loses at most the keystroke in flight. Reopening picks up the file and resumes at
the first item not fully rated. A file that holds another sheet's items (other ids, or other
questions or answers) or another rater's name is refused: resuming it would mix two evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from videosavi.errors import HumanEvalError
from videosavi.workflows.humaneval.columns import (
    ANSWERABLE,
    BETTER,
    COMMENT,
    ITEM_ID,
    JUDGEMENTS,
    RATER,
    SHEET_COLUMNS,
    SHEET_INFO_COLUMNS,
    VERDICT_A,
    VERDICT_B,
)
from videosavi.workflows.humaneval.csv_io import csv_text, read_csv, unneutralize_cell, write_text_atomic
from videosavi.workflows.humaneval.items import SheetItem
from videosavi.workflows.humaneval.judgements import (
    InvalidJudgement,
    is_blank,
    parse_a_b,
    parse_verdict,
    parse_yes_no,
)

FIELDS: tuple[str, ...] = (*JUDGEMENTS, COMMENT)
RATED_COLUMNS: tuple[str, ...] = (*SHEET_COLUMNS, RATER)
COMMENT_MAX_CHARS = 200_000  # a comment is a note, not a document; the page says so when one is longer
RATER_MAX_CHARS = 80
_VERDICT_TEXT = {"accurate": "accurate", "clear_errors": "clear errors", "neither": "neither"}


def _canonical(field: str, value: str) -> str:
    """The value as the page writes it (yes/no, accurate/clear errors/neither, A/B); `InvalidJudgement`
    for anything `score` would not accept."""
    if field == COMMENT:
        if len(value) > COMMENT_MAX_CHARS:
            raise InvalidJudgement(f"a comment holds at most {COMMENT_MAX_CHARS:,} characters")
        return value
    if is_blank(value):
        return ""
    parse: dict[str, Callable[[str], str]] = {
        ANSWERABLE: lambda v: "yes" if parse_yes_no(v) else "no",
        VERDICT_A: lambda v: _VERDICT_TEXT[parse_verdict(v)],
        VERDICT_B: lambda v: _VERDICT_TEXT[parse_verdict(v)],
        BETTER: parse_a_b,
    }
    if field not in parse:
        raise InvalidJudgement(f"{field!r} is not a judgement of the sheet ({', '.join(FIELDS)})")
    return parse[field](value)


def check_rater(name: str) -> str:
    """A rater's name as it goes into the file: one line of plain text."""
    clean = " ".join(name.split())
    if not clean:
        raise HumanEvalError("--rater must name the rater (e.g. --rater alice)")
    if len(clean) > RATER_MAX_CHARS or any(not c.isprintable() for c in clean):
        raise HumanEvalError(f"--rater {name!r}: use a short printable name (at most {RATER_MAX_CHARS} characters)")
    return clean


def default_out(sheet: Path, rater: str) -> Path:
    """`eval.csv` + rater `Ann Lee` -> `eval.ann-lee.csv` beside it (one file per rater, never the sheet)."""
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in rater.casefold()).strip("-") or "rater"
    return Path(sheet).with_name(f"{Path(sheet).stem}.{slug}.csv")


@dataclass
class RatedSheet:
    """One rater's sheet in memory (`items` as exported, `answers[i]` the judgements of item i) and the
    file it is saved to after every change."""

    sheet: Path
    out: Path
    rater: str
    items: list[SheetItem]
    answers: list[dict[str, str]]
    bom: bool = False

    @classmethod
    def open(cls, sheet: Path, out: Path, rater: str) -> RatedSheet:
        """Read the exported `sheet`, and resume `out` if it exists (same items, same rater) or start it
        from the sheet's own cells (a sheet begun in a spreadsheet keeps what it holds)."""
        sheet, out, rater = Path(sheet), Path(out), check_rater(rater)
        if not sheet.is_file():
            raise HumanEvalError(f"--sheet {sheet} does not exist (write one with savi humaneval export)")
        items, answers, _ = _read(sheet)
        bom = sheet.read_bytes()[:3] == b"\xef\xbb\xbf"
        if out.exists() and out.resolve() != sheet.resolve():
            done_items, done_answers, names = _read(out)
            _check_same_items(sheet, items, out, done_items)
            others = names - {rater}
            if others:
                raise HumanEvalError(f"{out} holds the ratings of {', '.join(sorted(others))}, not of {rater}: pass "
                                     f"--rater {sorted(others)[0]} to resume them, or another --out")
            answers = done_answers
        elif out.exists():
            others = _read(out)[2] - {rater}
            if others:
                raise HumanEvalError(f"{out} holds the ratings of {', '.join(sorted(others))}, not of {rater}: "
                                     "pass another --out")
        rated = cls(sheet, out, rater, items, answers, bom)
        rated.save()
        return rated

    def save(self) -> None:
        rows = [[*item.cells(), *(a.get(f, "") for f in FIELDS), self.rater]
                for item, a in zip(self.items, self.answers, strict=True)]
        text, _ = csv_text(RATED_COLUMNS, rows)
        write_text_atomic(self.out, text, encoding="utf-8-sig" if self.bom else "utf-8")

    def set(self, index: int, values: Mapping[str, str]) -> None:
        """Record judgements of item `index` (a blank value clears one) and save; `InvalidJudgement` for a
        value the scorer would not accept, or an OSError from saving (a full disk), and nothing is changed then."""
        if not 0 <= index < len(self.items):
            raise IndexError(index)
        clean = {field: _canonical(field, str(value)) for field, value in values.items()}
        before = dict(self.answers[index])
        self.answers[index].update(clean)
        try:
            self.save()
        except BaseException:  # not on disk, so not recorded: memory and file stay the same
            self.answers[index] = before
            raise

    def is_complete(self, index: int) -> bool:
        """All the judgements `score` needs: answerable, and (if it is) both verdicts and the pick."""
        a = self.answers[index]
        try:
            answerable = parse_yes_no(a.get(ANSWERABLE, ""))
        except InvalidJudgement:
            return False
        if not answerable:
            return True
        try:
            parse_verdict(a.get(VERDICT_A, ""))
            parse_verdict(a.get(VERDICT_B, ""))
            parse_a_b(a.get(BETTER, ""))
        except InvalidJudgement:
            return False
        return True

    @property
    def done(self) -> int:
        return sum(self.is_complete(i) for i in range(len(self.items)))

    def first_unrated(self) -> int | None:
        return next((i for i in range(len(self.items)) if not self.is_complete(i)), None)


def _read(path: Path) -> tuple[list[SheetItem], list[dict[str, str]], set[str]]:
    rows = read_csv(path, SHEET_INFO_COLUMNS)
    if not rows:
        raise HumanEvalError(f"{path} has no items")
    items = [SheetItem.from_cells(r.values) for r in rows]
    seen: set[str] = set()
    for row, item in zip(rows, items, strict=True):
        if not item.item_id:
            raise HumanEvalError(f"{path} line {row.line}: no {ITEM_ID}")
        if item.item_id in seen:
            raise HumanEvalError(f"{path} line {row.line}: item {item.item_id} appears twice")
        seen.add(item.item_id)
    answers = [{f: unneutralize_cell(r.values.get(f, "")) for f in FIELDS} for r in rows]
    names = {r.values.get(RATER, "").strip() for r in rows} - {""}
    return items, answers, names


def _check_same_items(sheet: Path, items: list[SheetItem], out: Path, done: list[SheetItem]) -> None:
    if [i.item_id for i in items] != [i.item_id for i in done]:
        raise HumanEvalError(f"{out} is not a filling of {sheet}: its items differ ({len(done)} items, "
                             f"{len(items)} in the sheet); pass another --out")
    for a, b in zip(items, done, strict=True):
        if a.fingerprint != b.fingerprint:
            raise HumanEvalError(f"{out} is not a filling of {sheet}: item {a.item_id} shows another question or "
                                 "answers (a sheet of another export?); pass another --out")

"""`savi humaneval score`: the paper's pair-correctness from filled sheets + the key, with agreement.

A rating is correct iff the question is answerable, the rater's better answer is the chosen one,
that answer is accurate, and the other one has clear errors. Per rater and for the item-level
majority (correct when more than half of an item's valid ratings say so; a tie is not correct),
overall and per question type, each with a 95% Wilson interval. A row with a missing or invalid
judgement is listed in `problems` and left out of the figures, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from videosavi.curation.humaneval.agreement import cohen_kappa, fleiss_kappa, wilson_interval
from videosavi.curation.humaneval.columns import (
    ANSWERABLE,
    BETTER,
    BETTER_ACCURATE,
    ITEM_ID,
    JUDGEMENTS,
    KEY_COLUMNS,
    WORSE_ERRORS,
)
from videosavi.curation.humaneval.csv_io import read_csv
from videosavi.curation.humaneval.judgements import InvalidJudgement, is_blank, parse_a_b, parse_yes_no
from videosavi.errors import HumanEvalError
from videosavi.schemas import QUESTION_TYPES

PREFERS_CHOSEN = "prefers_chosen"
PAIR_CORRECT = "pair_correct"
AGREEMENT_JUDGEMENTS: tuple[str, ...] = (ANSWERABLE, PREFERS_CHOSEN, BETTER_ACCURATE, WORSE_ERRORS, PAIR_CORRECT)


@dataclass(frozen=True)
class KeyItem:
    item_id: str
    pair_id: str
    chosen_is: str
    question_type: str


@dataclass(frozen=True)
class Rating:
    """One rater's valid judgements of one item (None: not asked because the question is unanswerable)."""

    item_id: str
    answerable: bool
    prefers_chosen: bool | None = None
    better_accurate: bool | None = None
    worse_errors: bool | None = None

    @property
    def correct(self) -> bool:
        return bool(self.answerable and self.prefers_chosen and self.better_accurate and self.worse_errors)

    def value(self, judgement: str) -> bool | None:
        return {
            ANSWERABLE: self.answerable, PREFERS_CHOSEN: self.prefers_chosen, BETTER_ACCURATE: self.better_accurate,
            WORSE_ERRORS: self.worse_errors, PAIR_CORRECT: self.correct,
        }[judgement]


class RowProblem(BaseModel):
    sheet: str
    line: int | None = Field(description="line in the file (header = 1); None for an item absent from the sheet")
    item_id: str
    problems: list[str]


class Rate(BaseModel):
    n: int
    correct: int
    rate: float | None
    ci_low: float | None = Field(description="95% Wilson interval")
    ci_high: float | None


class RaterScore(BaseModel):
    rater: str
    overall: Rate
    by_type: dict[str, Rate]


class Agreement(BaseModel):
    judgement: str
    method: str  # "cohen" | "fleiss"
    kappa: float | None
    n_items: int = Field(description="items every rater judged validly on this judgement")


class ScoreReport(BaseModel):
    key_items: int
    raters: list[RaterScore]
    majority: RaterScore
    majority_ties: int = Field(description="items whose valid ratings split evenly (counted as not correct)")
    agreement: list[Agreement]
    problems: list[RowProblem]


def _rate(correct: int, n: int) -> Rate:
    ci = wilson_interval(correct, n)
    return Rate(n=n, correct=correct, rate=correct / n if n else None,
                ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None)


def read_key(path: Path) -> dict[str, KeyItem]:
    """The key file; any bad row is an error (it is ours, not typed by a rater)."""
    items: dict[str, KeyItem] = {}
    bad: list[str] = []
    for row in read_csv(path, KEY_COLUMNS):
        v = row.values
        item_id = v[ITEM_ID].strip()
        if item_id in items:
            bad.append(f"line {row.line}: item {item_id} appears twice")
        elif v["chosen_is"].strip() not in ("A", "B"):
            bad.append(f"line {row.line}: chosen_is must be A or B, got {v['chosen_is']!r}")
        else:
            items[item_id] = KeyItem(item_id, v["pair_id"].strip(), v["chosen_is"].strip(), v["question_type"].strip())
    if bad:
        raise HumanEvalError(f"{path} is not a valid key file: " + "; ".join(bad[:10]))
    if not items:
        raise HumanEvalError(f"{path} has no items")
    return items


def _parse_row(values: dict[str, str], key_item: KeyItem) -> tuple[Rating | None, list[str]]:
    problems: list[str] = []

    def yes_no(column: str, required: bool) -> bool | None:
        cell = values.get(column, "")
        if is_blank(cell):
            if required:
                problems.append(f"{column}: missing")
            return None
        try:
            return parse_yes_no(cell)
        except InvalidJudgement as exc:
            problems.append(f"{column}: {exc}")
            return None

    answerable = yes_no(ANSWERABLE, required=True)
    required = answerable is not False  # an unanswerable question needs no further judgement
    better = None
    cell = values.get(BETTER, "")
    if is_blank(cell):
        if required:
            problems.append(f"{BETTER}: missing")
    else:
        try:
            better = parse_a_b(cell)
        except InvalidJudgement as exc:
            problems.append(f"{BETTER}: {exc}")
    accurate = yes_no(BETTER_ACCURATE, required)
    errors = yes_no(WORSE_ERRORS, required)
    if problems or answerable is None:
        return None, problems
    prefers = None if better is None else better == key_item.chosen_is
    return Rating(key_item.item_id, answerable, prefers, accurate, errors), []


def read_sheet(path: Path, key: dict[str, KeyItem]) -> tuple[dict[str, Rating], list[RowProblem]]:
    """One rater's valid ratings by item id, and every row that could not be used, with why."""
    ratings: dict[str, Rating] = {}
    problems: list[RowProblem] = []
    seen: set[str] = set()
    sheet = str(path)
    for row in read_csv(path, (ITEM_ID, *JUDGEMENTS)):
        item_id = row.values[ITEM_ID].strip().lstrip("'")
        if item_id not in key:
            problems.append(RowProblem(sheet=sheet, line=row.line, item_id=item_id,
                                       problems=["item id not in the key file"]))
            continue
        if item_id in seen:
            problems.append(RowProblem(sheet=sheet, line=row.line, item_id=item_id,
                                       problems=["item rated twice in this sheet (first row used)"]))
            continue
        seen.add(item_id)
        rating, row_problems = _parse_row(row.values, key[item_id])
        if rating is None:
            problems.append(RowProblem(sheet=sheet, line=row.line, item_id=item_id, problems=row_problems))
        else:
            ratings[item_id] = rating
    for item_id in key:
        if item_id not in seen:
            problems.append(RowProblem(sheet=sheet, line=None, item_id=item_id, problems=["item missing from sheet"]))
    return ratings, problems


def _score(label: str, correct_by_item: dict[str, bool], key: dict[str, KeyItem]) -> RaterScore:
    types = [t for t in QUESTION_TYPES if any(k.question_type == t for k in key.values())]
    types += sorted({k.question_type for k in key.values()} - set(types))
    by_type = {}
    for t in types:
        vals = [c for i, c in correct_by_item.items() if key[i].question_type == t]
        by_type[t] = _rate(sum(vals), len(vals))
    return RaterScore(rater=label, overall=_rate(sum(correct_by_item.values()), len(correct_by_item)), by_type=by_type)


def _agreement(per_rater: list[dict[str, Rating]], key: dict[str, KeyItem]) -> list[Agreement]:
    if len(per_rater) < 2:
        return []
    out = []
    for judgement in AGREEMENT_JUDGEMENTS:
        rows = []
        for item_id in key:
            values = [r[item_id].value(judgement) if item_id in r else None for r in per_rater]
            if all(v is not None for v in values):
                rows.append(values)
        if len(per_rater) == 2:
            kappa = cohen_kappa([r[0] for r in rows], [r[1] for r in rows])
            method = "cohen"
        else:
            kappa = fleiss_kappa(rows)
            method = "fleiss"
        out.append(Agreement(judgement=judgement, method=method, kappa=kappa, n_items=len(rows)))
    return out


def score_sheets(sheets: Sequence[Path], key_path: Path) -> ScoreReport:
    """Score one or more raters' filled sheets against the key (see the module docstring)."""
    if not sheets:
        raise HumanEvalError("give at least one filled sheet")
    key = read_key(key_path)
    per_rater: list[dict[str, Rating]] = []
    problems: list[RowProblem] = []
    raters = []
    names = [Path(p).name for p in sheets]
    for path, name in zip(sheets, names, strict=True):
        ratings, sheet_problems = read_sheet(Path(path), key)
        per_rater.append(ratings)
        problems.extend(sheet_problems)
        label = name if names.count(name) == 1 else str(path)
        raters.append(_score(label, {i: r.correct for i, r in ratings.items()}, key))
    majority: dict[str, bool] = {}
    ties = 0
    for item_id in key:
        votes = [r[item_id].correct for r in per_rater if item_id in r]
        if votes:
            yes = sum(votes)
            ties += 2 * yes == len(votes)
            majority[item_id] = 2 * yes > len(votes)
    return ScoreReport(
        key_items=len(key), raters=raters, majority=_score("majority", majority, key), majority_ties=ties,
        agreement=_agreement(per_rater, key), problems=problems,
    )

"""`savi humaneval score`: the paper's pair correctness from filled sheets + the key, with agreement.

A rating is correct iff the paper's three criteria hold (section 4.2): the question is answerable,
the chosen answer is accurate, and the rejected answer has clear errors (the rater's verdicts on
answers A and B, mapped through the key). The rater's blind pick of the better answer is scored
apart, as how often raters prefer what the model preferred; it never enters correctness. Both per
rater and for the item-level majority (more than half of an item's valid ratings; a tie is not),
overall and per question type, each with a 95% Wilson interval. A row with a missing or invalid
judgement is listed in `problems` and left out of the figures, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from videosavi.errors import HumanEvalError
from videosavi.schemas import QUESTION_TYPES
from videosavi.workflows.humaneval.agreement import cohen_kappa, fleiss_kappa, wilson_interval
from videosavi.workflows.humaneval.columns import (
    ANSWERABLE,
    BETTER,
    ITEM_FINGERPRINT,
    ITEM_ID,
    JUDGEMENTS,
    KEY_COLUMNS,
    OLD_JUDGEMENTS,
    RATER,
    VERDICT_OF,
)
from videosavi.workflows.humaneval.csv_io import read_csv, read_header
from videosavi.workflows.humaneval.items import SheetItem
from videosavi.workflows.humaneval.judgements import (
    InvalidJudgement,
    Verdict,
    is_blank,
    parse_a_b,
    parse_verdict,
    parse_yes_no,
)
from videosavi.workflows.humaneval.label_studio import RaterRows, looks_like_json, read_label_studio

CHOSEN_ACCURATE = "chosen_accurate"
REJECTED_ERRORS = "rejected_clear_errors"
PAIR_CORRECT = "pair_correct"
PREFERS_CHOSEN = "prefers_chosen"
CRITERIA: tuple[str, ...] = (ANSWERABLE, CHOSEN_ACCURATE, REJECTED_ERRORS)
AGREEMENT_JUDGEMENTS: tuple[str, ...] = (*CRITERIA, PAIR_CORRECT, PREFERS_CHOSEN)


@dataclass(frozen=True)
class KeyItem:
    item_id: str
    pair_id: str
    chosen_is: str
    question_type: str

    @property
    def rejected_is(self) -> str:
        return "B" if self.chosen_is == "A" else "A"


@dataclass(frozen=True)
class Rating:
    """One rater's valid judgements of one item, mapped through the key (None: not asked, because
    the question is unanswerable)."""

    item_id: str
    answerable: bool
    chosen_verdict: Verdict | None = None
    rejected_verdict: Verdict | None = None
    prefers_chosen: bool | None = None

    @property
    def chosen_accurate(self) -> bool | None:
        return None if self.chosen_verdict is None else self.chosen_verdict == "accurate"

    @property
    def rejected_errors(self) -> bool | None:
        return None if self.rejected_verdict is None else self.rejected_verdict == "clear_errors"

    @property
    def correct(self) -> bool:
        """The paper's three criteria; the blind pick plays no part."""
        return bool(self.answerable and self.chosen_accurate and self.rejected_errors)

    def value(self, judgement: str) -> bool | None:
        return {
            ANSWERABLE: self.answerable, CHOSEN_ACCURATE: self.chosen_accurate, REJECTED_ERRORS: self.rejected_errors,
            PAIR_CORRECT: self.correct, PREFERS_CHOSEN: self.prefers_chosen,
        }[judgement]


class RowProblem(BaseModel):
    sheet: str
    line: int | None = Field(description="line in the file (header = 1); None for an item absent from the sheet")
    item_id: str
    problems: list[str]


class Rate(BaseModel):
    n: int = Field(description="items judged")
    yes: int = Field(description="items for which it holds")
    rate: float | None
    ci_low: float | None = Field(description="95% Wilson interval")
    ci_high: float | None


class RaterScore(BaseModel):
    rater: str
    overall: Rate = Field(description="pair correctness: the paper's three criteria, over all items")
    by_type: dict[str, Rate]
    criteria: dict[str, Rate] = Field(description="each criterion alone; the last two over answerable items")
    prefers_chosen: Rate = Field(description="blind pick = the chosen answer, over answerable items (not correctness)")
    prefers_chosen_by_type: dict[str, Rate]


class Agreement(BaseModel):
    judgement: str
    method: str  # "cohen" | "fleiss"
    kappa: float | None
    n_items: int = Field(description="items every rater judged validly on this judgement")


class ScoreReport(BaseModel):
    key_items: int
    raters: list[RaterScore]
    majority: RaterScore
    majority_ties: int = Field(description="items whose correctness ratings split evenly (counted as not correct)")
    agreement: list[Agreement]
    problems: list[RowProblem]


def _rate(yes: int, n: int) -> Rate:
    ci = wilson_interval(yes, n)
    return Rate(n=n, yes=yes, rate=yes / n if n else None,
                ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None)


def read_key(path: Path) -> tuple[dict[str, KeyItem], dict[str, str]]:
    """The key file, and each item's fingerprint where the key has one (`items.py`); any bad row is an
    error (it is ours, not typed by a rater)."""
    items: dict[str, KeyItem] = {}
    prints: dict[str, str] = {}
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
            if v.get(ITEM_FINGERPRINT, "").strip():
                prints[item_id] = v[ITEM_FINGERPRINT].strip()
    if bad:
        raise HumanEvalError(f"{path} is not a valid key file: " + "; ".join(bad[:10]))
    if not items:
        raise HumanEvalError(f"{path} has no items")
    return items, prints


T = TypeVar("T")


def _parse_row(values: dict[str, str], key_item: KeyItem) -> tuple[Rating | None, list[str]]:
    problems: list[str] = []

    def cell(column: str, parse: Callable[[str], T], required: bool) -> T | None:
        value = values.get(column, "")
        if is_blank(value):
            if required:
                problems.append(f"{column}: missing")
            return None
        try:
            return parse(value)
        except InvalidJudgement as exc:
            problems.append(f"{column}: {exc}")
            return None

    answerable = cell(ANSWERABLE, parse_yes_no, required=True)
    required = answerable is not False  # an unanswerable question needs no further judgement
    verdicts = {ab: cell(column, parse_verdict, required) for ab, column in VERDICT_OF.items()}
    better = cell(BETTER, parse_a_b, required)
    if problems or answerable is None:
        return None, problems
    return Rating(
        key_item.item_id, bool(answerable), chosen_verdict=verdicts[key_item.chosen_is],
        rejected_verdict=verdicts[key_item.rejected_is],
        prefers_chosen=None if better is None else better == key_item.chosen_is,
    ), []


def read_sources(path: Path) -> list[RaterRows]:
    """The raters in one file: a CSV sheet is one rater (named by its `rater` column, which the rater page
    fills, else by the file's name); a Label Studio JSON export holds one per annotator."""
    path = Path(path)
    if looks_like_json(path):
        return read_label_studio(path)
    _refuse_old_sheet(path)
    rows = read_csv(path, (ITEM_ID, *JUDGEMENTS))
    names = {r.values.get(RATER, "").strip() for r in rows} - {""}
    return [RaterRows(names.pop() if len(names) == 1 else path.name, rows)]


def read_sheet(source: RaterRows, sheet: str, key: dict[str, KeyItem],
               prints: dict[str, str]) -> tuple[dict[str, Rating], list[RowProblem]]:
    """One rater's valid ratings by item id, and every row that could not be used, with why.

    Where the key holds fingerprints, a row whose item shows other text than the key was exported with
    is a problem (a cell edited by hand), and a source with no matching row, or more rows that differ
    than rows that match, is an error: it belongs to another export."""
    ratings: dict[str, Rating] = {}
    problems: list[RowProblem] = []
    seen: set[str] = set()
    matched = mismatched = 0
    for row in source.rows:
        item_id = row.values[ITEM_ID].strip().lstrip("'")
        if item_id not in key:
            problems.append(RowProblem(sheet=sheet, line=row.line, item_id=item_id,
                                       problems=["item id not in the key file"]))
            continue
        if item_id in prints and SheetItem.from_cells(row.values).fingerprint != prints[item_id]:
            mismatched += 1
            problems.append(RowProblem(sheet=sheet, line=row.line, item_id=item_id, problems=[
                "the video, clip, question or answers differ from those the key was exported with"]))
            continue
        matched += 1
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
    if source.rows and (not matched or mismatched > matched):
        why = (f"{mismatched} of its {len(source.rows)} items show other questions or answers than the key's"
               if mismatched else f"none of its {len(source.rows)} item ids is in the key")
        raise HumanEvalError(f"{sheet} and the key do not match ({why}): score each sheet with the key "
                             "exported with it")
    for item_id in key:
        if item_id not in seen:
            problems.append(RowProblem(sheet=sheet, line=None, item_id=item_id, problems=["item missing from sheet"]))
    return ratings, problems


def _refuse_old_sheet(path: Path) -> None:
    """A sheet from before the per-answer verdicts holds judgements relative to the rater's pick, which
    cannot give the paper's criteria: say so instead of listing missing columns."""
    columns = set(read_header(path))
    if set(OLD_JUDGEMENTS) <= columns and not set(VERDICT_OF.values()) <= columns:
        raise HumanEvalError(
            f"{path} is an old rater sheet ({', '.join(OLD_JUDGEMENTS)}): its judgements follow the rater's pick, "
            "so the paper's three criteria cannot be read from it; export a new sheet (savi humaneval export)")


def _types(key: dict[str, KeyItem]) -> list[str]:
    types = [t for t in QUESTION_TYPES if any(k.question_type == t for k in key.values())]
    return types + sorted({k.question_type for k in key.values()} - set(types))


def _rates(values: dict[str, bool], key: dict[str, KeyItem]) -> tuple[Rate, dict[str, Rate]]:
    """Overall and per question type."""
    by_type = {}
    for t in _types(key):
        vals = [v for i, v in values.items() if key[i].question_type == t]
        by_type[t] = _rate(sum(vals), len(vals))
    return _rate(sum(values.values()), len(values)), by_type


def _score(label: str, values: dict[str, dict[str, bool]], key: dict[str, KeyItem]) -> RaterScore:
    """`values[judgement][item]`: the valid judgements (None left out) of one rater or the majority."""
    overall, by_type = _rates(values[PAIR_CORRECT], key)
    prefers, prefers_by_type = _rates(values[PREFERS_CHOSEN], key)
    criteria = {c: _rate(sum(values[c].values()), len(values[c])) for c in CRITERIA}
    return RaterScore(rater=label, overall=overall, by_type=by_type, criteria=criteria, prefers_chosen=prefers,
                      prefers_chosen_by_type=prefers_by_type)


def _values(ratings: dict[str, Rating]) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {}
    for judgement in AGREEMENT_JUDGEMENTS:
        out[judgement] = {}
        for item_id, r in ratings.items():
            v = r.value(judgement)
            if v is not None:
                out[judgement][item_id] = v
    return out


def _majority(per_rater: list[dict[str, dict[str, bool]]], key: dict[str, KeyItem]) -> tuple[dict, int]:
    """Item-level majority of every judgement (a tie is False), and the ties of pair correctness."""
    out: dict[str, dict[str, bool]] = {}
    ties = 0
    for judgement in AGREEMENT_JUDGEMENTS:
        out[judgement] = {}
        for item_id in key:
            votes = [r[judgement][item_id] for r in per_rater if item_id in r[judgement]]
            if votes:
                yes = sum(votes)
                out[judgement][item_id] = 2 * yes > len(votes)
                if judgement == PAIR_CORRECT:
                    ties += 2 * yes == len(votes)
    return out, ties


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
    """Score one or more raters' filled sheets (CSV, or Label Studio JSON exports) against the key (see
    the module docstring). A rater is labelled by name where the file gives one, else by the file's name."""
    if not sheets:
        raise HumanEvalError("give at least one filled sheet")
    key, prints = read_key(key_path)
    sources = [(Path(path), source) for path in sheets for source in read_sources(Path(path))]
    labels = [source.label for _, source in sources]
    per_rater: list[dict[str, Rating]] = []
    problems: list[RowProblem] = []
    raters = []
    for (path, source), label in zip(sources, labels, strict=True):
        ratings, sheet_problems = read_sheet(source, str(path), key, prints)
        per_rater.append(ratings)
        problems.extend(sheet_problems)
        unique = label if labels.count(label) == 1 else f"{label} ({path})"
        raters.append(_score(unique, _values(ratings), key))
    majority, ties = _majority([_values(r) for r in per_rater], key)
    return ScoreReport(
        key_items=len(key), raters=raters, majority=_score("majority", majority, key), majority_ties=ties,
        agreement=_agreement(per_rater, key), problems=problems,
    )

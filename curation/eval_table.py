"""The error table of `savi eval judge`: the paper's Table 2 measured on your own iterations.

Rows are the six error types and a total; columns are the answers folders in the order given (iter1,
iter2, ...). Each cell counts the errors the judge listed in that folder's answers (the paper's
figure); when the judge also rated severity (`--severity`, not in the paper) the cell splits them
into critical and minor as an extra. The change column compares each folder with the one before it,
and the total row also with the first (the paper reports -79.5% from iteration 1 to 4). Only judged
answers count: answers the judge could not grade (`unjudged`) and questions a model did not answer
(`unanswered`) are reported per column, never taken as error-free. Pure functions: records in, table
out.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from pydantic import BaseModel, Field, computed_field

from videosavi.schemas import ERROR_TYPES, QUESTION_TYPES, SEVERITIES
from videosavi.schemas.evaluation import JudgementRecord

TOTAL = "total"


class Cell(BaseModel):
    critical: int = 0
    minor: int = 0
    unrated: int = Field(default=0, description="errors the judge gave no severity (it was not asked for one)")

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects decorators over @property
    @property
    def all(self) -> int:
        return self.critical + self.minor + self.unrated


class TableRow(BaseModel):
    error_type: str = Field(description="one of the six error types, or `total`")
    cells: dict[str, Cell] = Field(description="label -> errors by severity")
    change: dict[str, float | None] = Field(
        default_factory=dict, description="label -> change in all errors against the label before, as a fraction")


class ColumnSummary(BaseModel):
    label: str
    questions: int
    judged: int
    unjudged: int = Field(description="the judge's reply never parsed (kept with its raw text)")
    unanswered: int = Field(description="the model gave no answer to judge")
    answers_with_errors: int
    errors_by_question_type: dict[str, int]

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects decorators over @property
    @property
    def errors_per_answer(self) -> float | None:
        return None if not self.judged else sum(self.errors_by_question_type.values()) / self.judged


class ErrorTable(BaseModel):
    labels: list[str]
    rows: list[TableRow]
    total: TableRow
    change_from_first: float | None = Field(description="total errors, last column against the first")
    columns: list[ColumnSummary]

    @property
    def rated(self) -> bool:
        """Whether any error carries a severity (then the table shows the critical/minor split)."""
        return any(c.critical or c.minor for c in self.total.cells.values())

    def cell(self, error_type: str, label: str) -> Cell:
        row = self.total if error_type == TOTAL else next(r for r in self.rows if r.error_type == error_type)
        return row.cells[label]


def _change(before: int, after: int) -> float | None:
    return None if before == 0 else (after - before) / before


def _with_changes(row: TableRow, labels: Sequence[str]) -> TableRow:
    changes: dict[str, float | None] = {}
    for prev, cur in pairwise(labels):
        changes[cur] = _change(row.cells[prev].all, row.cells[cur].all)
    return row.model_copy(update={"change": changes})


def error_table(records: Sequence[JudgementRecord], labels: Sequence[str]) -> ErrorTable:
    """Count the judged errors of `records` per error type, label and severity (see the module doc)."""
    labels = list(labels)
    unknown = sorted({r.label for r in records} - set(labels))
    if unknown:
        raise ValueError(f"records carry labels {unknown} that are not among {labels}")
    counts = {et: {label: Cell() for label in labels} for et in ERROR_TYPES}
    columns = []
    for label in labels:
        mine = [r for r in records if r.label == label]
        judged = [r for r in mine if r.status == "judged"]
        for r in judged:
            for e in r.errors:
                cell = counts[e.error_type][label]
                kind = e.severity or "unrated"
                setattr(cell, kind, getattr(cell, kind) + 1)
        by_type = {t: sum(len(r.errors) for r in judged if r.question_type == t) for t in QUESTION_TYPES}
        columns.append(ColumnSummary(
            label=label, questions=len(mine), judged=len(judged),
            unjudged=sum(r.status == "unjudged" for r in mine), unanswered=sum(r.status == "unanswered" for r in mine),
            answers_with_errors=sum(bool(r.errors) for r in judged), errors_by_question_type=by_type))
    rows = [_with_changes(TableRow(error_type=et, cells=counts[et]), labels) for et in ERROR_TYPES]
    total_cells = {label: Cell(**{sev: sum(getattr(counts[et][label], sev) for et in ERROR_TYPES)
                                  for sev in (*SEVERITIES, "unrated")}) for label in labels}
    total = _with_changes(TableRow(error_type=TOTAL, cells=total_cells), labels)
    first_last = _change(total_cells[labels[0]].all, total_cells[labels[-1]].all) if len(labels) > 1 else None
    return ErrorTable(labels=labels, rows=rows, total=total, change_from_first=first_last, columns=columns)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def table_markdown(table: ErrorTable) -> str:
    """The table as Markdown: per label all errors (with their critical/minor split when the judge rated
    severity), and the change to the next label."""
    header = ["error type"]
    for i, label in enumerate(table.labels):
        header.append(f"{label} (critical/minor)" if table.rated else label)
        if i:
            header.append(f"change {table.labels[i - 1]}→{label}")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in [*table.rows, table.total]:
        name = "**total**" if row.error_type == TOTAL else row.error_type.replace("_", " ")
        cells = [name]
        for i, label in enumerate(table.labels):
            c = row.cells[label]
            cells.append(f"{c.all} ({c.critical}/{c.minor})" if table.rated else str(c.all))
            if i:
                cells.append(_pct(row.change.get(label)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| answers | " + " | ".join(table.labels) + " |")
    lines.append("|" + " --- |" * (len(table.labels) + 1))
    summary = (("questions", "questions"), ("judged", "judged"), ("unjudged (reply never parsed)", "unjudged"),
               ("unanswered (no answer to judge)", "unanswered"), ("judged with errors", "answers_with_errors"))
    for name, attr in summary:
        lines.append(f"| {name} | " + " | ".join(str(getattr(c, attr)) for c in table.columns) + " |")
    lines.append("| errors per judged answer | " + " | ".join(
        "n/a" if c.errors_per_answer is None else f"{c.errors_per_answer:.2f}" for c in table.columns) + " |")
    if table.change_from_first is not None:
        lines.append("")
        lines.append(f"Total errors, {table.labels[-1]} against {table.labels[0]}: {_pct(table.change_from_first)}.")
    return "\n".join(lines) + "\n"

"""Table 1 / Figure 3 of the paper from `savi bench` results: scores by model (iteration), with each
score's change over the base model as the paper prints it (a subscript there, `+0.8` here). Pure.

Rows are the results files, ordered base, iter1, iter2, ... then any other label; columns are the tasks
any of them has, the paper's six first in the paper's order. Scores are in percent (`BenchScore.percent`),
one decimal as in the paper. The base row is the one of iteration 0, or the label asked for; a model
without a score for a task has an empty cell (and no delta).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videosavi.schemas.bench import BenchResults


@dataclass(frozen=True)
class Cell:
    percent: float
    delta: float | None  # over the base row, percentage points
    n: int
    limited: bool  # scored on LMMs-Eval's --limit subset


@dataclass(frozen=True)
class Row:
    label: str
    iteration: int | None
    model: str
    revision: str
    cells: dict[str, Cell]  # column key (task) -> cell


@dataclass(frozen=True)
class Reference:
    """A row of numbers the paper prints (not measured here), keyed by benchmark name."""

    label: str
    scores: dict[str, float]


@dataclass
class BenchTable:
    columns: list[str]  # task names
    titles: dict[str, str]  # task -> column title (the paper's benchmark name, else the task)
    rows: list[Row]
    base: str | None
    references: list[Reference] = field(default_factory=list)

    def series(self, task: str) -> list[tuple[int, float]]:
        """(iteration, percent) of the rows that have an iteration, for Figure 3."""
        return [(r.iteration, r.cells[task].percent) for r in self.rows
                if r.iteration is not None and task in r.cells]


def bench_table(results: list[BenchResults], *, base: str | None = None, order: list[str] | None = None,
                references: list[Reference] | None = None) -> BenchTable:
    """The table of `results`; `order` lists tasks that come first (the paper's), `base` a label."""
    results = sorted(results, key=lambda r: (r.model.iteration is None, r.model.iteration or 0, r.label))
    base_row = next((r for r in results if r.label == base), None) if base else next(
        (r for r in results if r.model.iteration == 0), None)
    if base and base_row is None:
        raise ValueError(f"no results labelled {base!r} to compare with")
    tasks = [t for r in results for t in r.scores]
    first = [t for t in (order or []) if t in tasks]
    columns = first + sorted({t for t in tasks if t not in first})
    titles: dict[str, str] = {}
    for r in results:
        for t, s in r.scores.items():
            titles.setdefault(t, s.benchmark or t)
    rows = []
    for r in results:
        cells = {}
        for t, s in r.scores.items():
            ref = base_row.scores.get(t) if base_row is not None and base_row is not r else None
            cells[t] = Cell(percent=s.percent, delta=(s.percent - ref.percent) if ref is not None else None,
                            n=s.n, limited=s.limit is not None)
        rows.append(Row(r.label, r.model.iteration, r.model.name_or_path, r.model.revision, cells))
    return BenchTable(columns, titles, rows, base_row.label if base_row is not None else None,
                      list(references or []))


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    text = f"{cell.percent:.1f}"
    if cell.delta is not None:
        text += f" ({cell.delta:+.1f})"
    return text + ("*" if cell.limited else "")


def table_markdown(table: BenchTable) -> str:
    """The table as Markdown: a row per model, a column per task, `score (delta)` in each cell."""
    head = ["model", *(table.titles[c] for c in table.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        name = f"{row.label} (base)" if row.iteration == 0 and row.label != "base" else row.label
        lines.append("| " + " | ".join([name, *(_cell(row.cells.get(c)) for c in table.columns)]) + " |")
    shown = [ref for ref in table.references if any(table.titles[c] in ref.scores for c in table.columns)]
    for ref in shown:
        values = [f"{ref.scores[table.titles[c]]:.1f}" if table.titles[c] in ref.scores else "" for c in table.columns]
        lines.append("| " + " | ".join([f"*{ref.label}*", *values]) + " |")
    notes = []
    if table.base:
        notes.append(f"Scores in percent; in brackets, the change over `{table.base}` in points.")
    else:
        notes.append("Scores in percent. No base model (iteration 0) among the results: no changes shown.")
    if any(c.limited for r in table.rows for c in r.cells.values()):
        notes.append("`*`: scored on a subset (LMMs-Eval --limit), not comparable with full scores.")
    if shown:
        notes.append("Rows in italics are the paper's numbers (Table 1), not measured here.")
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"

"""What the card needs from the statistics, taken from `videosavi.curation.stats` (never recomputed).

`summarize` gives the numbers, `compare` the revision-by-revision tables (the self-critique's issues
by error type, the headline overview, the length-ratio and severity trend); this module only adds the
raw word counts the length histogram needs and lays the comparison out as Markdown rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from videosavi.curation.stats import DatasetStats, compare, pairs_frame, summarize


@dataclass(frozen=True)
class CardStats:
    summary: DatasetStats
    word_counts: dict[str, list[int]] = field(default_factory=dict, repr=False)  # for the histograms


def card_stats(pairs: pa.Table | Any) -> CardStats:
    """Statistics of PreferencePair rows (anything `curation.stats.pairs_frame` accepts)."""
    df = pairs_frame(pairs)
    return CardStats(summarize(df), {"chosen": df["chosen_words"].to_list(),
                                     "rejected": df["rejected_words"].to_list()})


def fmt(value: float | int | None, spec: str = ".4g") -> str:
    """A figure for a table cell; missing figures (no rows) read `n/a`."""
    return "n/a" if value is None else format(value, spec)


def change(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == 0:
        return "n/a"
    return f"{(after - before) / before * 100:+.1f}%"


def error_table(current: CardStats, current_label: str, previous: CardStats | None = None,
                previous_label: str | None = None) -> tuple[list[str], list[list[str]]]:
    """The self-critique's issues in the kept pairs: error types as rows with a total row (via `compare`).

    Columns: this revision's critical, minor and all issues; with a previous revision, its total and
    the change in percent.
    """
    labels = {current_label: current.summary}
    if previous is not None and previous_label:
        labels = {previous_label: previous.summary, current_label: current.summary}
    table = compare(labels, by="error_type")
    header = ["error type", f"{current_label} critical", f"{current_label} minor", f"{current_label} all"]
    if len(labels) == 2:
        header += [f"{previous_label} all", "change"]
    by_sev = current.summary.error_type_by_severity
    rows = []
    for row in table.iter_rows(named=True):
        kind = row["error_type"]
        if kind == "total":
            crit = sum(v.get("critical", 0) for v in by_sev.values())
            minor = sum(v.get("minor", 0) for v in by_sev.values())
            label = "**total**"
        else:
            crit, minor = by_sev.get(kind, {}).get("critical", 0), by_sev.get(kind, {}).get("minor", 0)
            label = kind.replace("_", " ")
        cells = [label, str(crit), str(minor), str(row[current_label])]
        if previous_label is not None and len(labels) == 2:
            cells += [str(row[previous_label]), change(row[previous_label], row[current_label])]
        rows.append(cells)
    return header, rows


def trend_rows(history: dict[str, CardStats]) -> tuple[list[str], list[list[str]]]:
    """Length ratio and severity mix of every revision in `history` (oldest first), as Markdown rows."""
    table = compare({label: s.summary for label, s in history.items()}, by="trend")
    labels = list(history)
    return ["", *labels], [[row["metric"], *(fmt(row[label]) for label in labels)]
                           for row in table.iter_rows(named=True)]


def overview_changes(current: CardStats, current_label: str, previous: CardStats,
                     previous_label: str) -> list[list[str]]:
    """Headline figures of two revisions and their change (via `compare(by="overview")`)."""
    table = compare({previous_label: previous.summary, current_label: current.summary}, by="overview")
    return [[row["metric"], fmt(row[previous_label]), fmt(row[current_label]),
             change(row[previous_label], row[current_label])] for row in table.iter_rows(named=True)]

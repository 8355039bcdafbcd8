"""The plot of `savi eval judge`: judged errors per type across iterations, and their severity mix.

`error_table_figure` builds the figure (tests read its lines and bars back); `plot_error_table`
saves it. Left: one line per error type over the answers folders, as the paper's Table 2 reads
down its columns. Right: total errors per folder, critical stacked under minor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videosavi.cards.plots import new_figure, save_figure
from videosavi.curation.eval_table import ErrorTable

_SEVERITY_COLORS = {"critical": "#c0392b", "minor": "#f0a35e"}


def error_table_figure(table: ErrorTable) -> Any:
    """The matplotlib figure of `table` (not saved)."""
    fig, (lines, bars) = new_figure(11.0, 4.2, ncols=2)
    xs = list(range(len(table.labels)))
    for row in table.rows:
        lines.plot(xs, [row.cells[label].all for label in table.labels], marker="o",
                   label=row.error_type.replace("_", " "))
    lines.set_xticks(xs, table.labels)
    lines.set_ylabel("errors found by the judge")
    lines.set_title("Errors by type")
    lines.legend(fontsize=8)
    bottom = [0] * len(xs)
    shown = {**_SEVERITY_COLORS, "unrated": "#7f7f7f"} if table.rated else {"unrated": "#7f7f7f"}
    for severity, color in shown.items():
        values = [getattr(table.total.cells[label], severity) for label in table.labels]
        bars.bar(xs, values, bottom=bottom, color=color, label=severity if table.rated else "all errors")
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    judged = {c.label: c.judged for c in table.columns}
    bars.set_xticks(xs, [f"{label}\n({judged[label]} judged)" for label in table.labels])
    bars.set_ylabel("errors")
    bars.set_title("All errors by severity" if table.rated else "All errors")
    bars.legend(fontsize=8)
    return fig


def plot_error_table(table: ErrorTable, path: Path) -> Path:
    return save_figure(error_table_figure(table), path)

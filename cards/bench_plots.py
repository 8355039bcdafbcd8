"""Figure 3 of the paper from `savi bench` results: each benchmark's score over the self-training
iterations (iteration 0 is the base model), one panel per benchmark, the base score as a dotted line.

`bench_figure` builds the figure (tests read its lines back); `plot_bench_table` saves it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from videosavi.cards.bench_table import BenchTable
from videosavi.cards.plots import new_figure, save_figure

MAX_COLUMNS = 3


def bench_figure(table: BenchTable) -> Any:
    """One panel per column with at least one score from an iteration; scores in percent."""
    columns = [c for c in table.columns if table.series(c)] or table.columns[:1]
    ncols = min(MAX_COLUMNS, max(1, len(columns)))
    nrows = max(1, math.ceil(len(columns) / ncols))
    fig, axes = new_figure(3.6 * ncols, 2.9 * nrows, ncols=ncols, nrows=nrows)
    flat = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for ax, task in zip(flat, columns, strict=False):
        points = sorted(table.series(task))
        xs = [i for i, _ in points]
        ys = [v for _, v in points]
        ax.plot(xs, ys, marker="o", color="#2e86c1")
        for x, y in points:
            ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        if points and points[0][0] == 0:
            ax.axhline(points[0][1], linestyle=":", color="#9aa5b1", linewidth=1)
        ax.set_title(table.titles.get(task, task), fontsize=10)
        ax.set_xticks(xs, ["base" if x == 0 else f"iter {x}" for x in xs], fontsize=8)
        ax.set_ylabel("score (%)", fontsize=8)
        if ys:
            pad = max(1.0, (max(ys) - min(ys)) * 0.25)
            ax.set_ylim(max(0.0, min(ys) - pad), min(100.0, max(ys) + pad) if max(ys) + pad > min(ys) else 100.0)
    for ax in flat[len(columns):]:
        ax.axis("off")
    fig.suptitle("Benchmark scores by self-training iteration", fontsize=11)
    return fig


def plot_bench_table(table: BenchTable, path: Path) -> Path:
    return save_figure(bench_figure(table), path)

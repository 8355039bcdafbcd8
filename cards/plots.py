"""PNG plots committed with each revision and linked from its card (matplotlib, Agg backend).

Rendering is deterministic (fixed sizes, no timestamps or version in the PNG metadata), so
re-publishing the same run renders byte-identical plots and stays a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videosavi.cards.stats import CardStats, fmt
from videosavi.curation.stats import compare
from videosavi.schemas.enums import SEVERITIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
_PNG_METADATA = {"Software": None}
_COLORS = {"critical": "#c0392b", "minor": "#f0a35e", "previous": "#9aa5b1", "chosen": "#2e86c1",
           "rejected": "#c0392b"}


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, Any]:
    """(figure, axes) on the Agg backend: no display needed, same pixels on every machine. The axes are
    one `Axes`, or an array of them for a grid, as `plt.subplots` gives them."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height), dpi=100)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG without time or version metadata (re-renders are byte-identical)."""
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_METADATA)
    plt.close(fig)
    return Path(path)


def plot_error_types(stats: CardStats, path: Path, *, label: str, previous: CardStats | None = None,
                     previous_label: str | None = None) -> Path:
    """Issues per error type, split by severity; the previous revision's totals beside them."""
    summary = stats.summary
    kinds = list(summary.by_error_type)
    fig, ax = new_figure(7.5, 0.5 * len(kinds) + 2.0)
    ys = list(range(len(kinds)))
    height = 0.38 if previous else 0.7
    left = [0] * len(kinds)
    for sev in SEVERITIES:
        values = [summary.error_type_by_severity.get(k, {}).get(sev, 0) for k in kinds]
        ax.barh([y - (height / 2 if previous else 0) for y in ys], values, height=height, left=left,
                color=_COLORS.get(sev, "#888888"), label=f"{label} {sev}")
        left = [a + b for a, b in zip(left, values, strict=True)]
    if previous is not None:
        ax.barh([y + height / 2 for y in ys], [previous.summary.by_error_type.get(k, 0) for k in kinds], height=height,
                color=_COLORS["previous"], label=f"{previous_label} (all)")
    ax.set_yticks(ys, [k.replace("_", " ") for k in kinds])
    ax.invert_yaxis()
    ax.set_xlabel("issues the self-critique found in the kept pairs")
    ax.set_title("Self-critique issues by error type")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
    return save_figure(fig, path)


def plot_lengths(stats: CardStats, path: Path) -> Path:
    """Word counts of chosen vs rejected answers (ISR-DPO's length-bias check)."""
    chosen, rejected = stats.word_counts.get("chosen", []), stats.word_counts.get("rejected", [])
    fig, ax = new_figure(7.5, 3.6)
    top = max([*chosen, *rejected, 1])
    bins = list(range(0, top + 2, max(1, (top + 1) // 30)))
    summary = stats.summary
    ax.hist(rejected, bins=bins, alpha=0.6, color=_COLORS["rejected"],
            label=f"rejected (median {fmt(summary.rejected_words.median)})")
    ax.hist(chosen, bins=bins, alpha=0.6, color=_COLORS["chosen"],
            label=f"chosen (median {fmt(summary.chosen_words.median)})")
    ax.set_xlabel("words per answer")
    ax.set_ylabel("pairs")
    ratio = summary.length_ratio
    ax.set_title(f"Answer length: chosen/rejected ratio median {fmt(ratio.median, '.3g')}, "
                 f"chosen longer in {fmt(ratio.share_chosen_longer, '.0%')}")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_composition(stats: CardStats, path: Path) -> Path:
    """Pairs per source, split by question type."""
    summary = stats.summary
    sources = list(summary.by_source_question_type) or ["(none)"]
    qtypes = list(summary.by_question_type)
    fig, ax = new_figure(7.5, 3.4)
    width = 0.8 / max(1, len(qtypes))
    for i, qt in enumerate(qtypes):
        xs = [s + (i - (len(qtypes) - 1) / 2) * width for s in range(len(sources))]
        ax.bar(xs, [summary.by_source_question_type.get(src, {}).get(qt, 0) for src in sources], width=width,
               label=qt)
    ax.set_xticks(range(len(sources)), sources)
    ax.set_ylabel("pairs")
    ax.set_title("Pairs per source and question type")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


TREND_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Answer length (mean words)", ("chosen words (mean)", "rejected words (mean)")),
    ("Length ratio (chosen / rejected words)",
     ("length ratio (median)", "length ratio (mean)", "chosen words / rejected words (totals)")),
    ("Severity mix of the self-critique", ("critical pairs (share)", "critical issues (share of issues)")),
)


def trend_figure(history: Mapping[str, CardStats]) -> Any:
    """How answer lengths, the length ratio and the critic's severity mix move over the revisions of
    `history` (oldest first): one line per figure of `compare(by="trend")`, one point per revision.
    The first two panels are ISR-DPO's Figure 4 for our data: (a) the mean length of the chosen answers
    (rejected beside it), (b) the chosen/rejected length ratio, per iteration."""
    table = {r["metric"]: r for r in compare({k: s.summary for k, s in history.items()}, by="trend").to_dicts()}
    labels = list(history)
    xs = list(range(len(labels)))
    fig, axes = new_figure(5.0 * len(TREND_PANELS), 3.8, ncols=len(TREND_PANELS))
    for ax, (title, metrics) in zip(axes, TREND_PANELS, strict=True):
        for metric in metrics:
            ax.plot(xs, [float("nan") if table[metric][k] is None else table[metric][k] for k in labels],
                    marker="o", label=metric)
        ax.set_xticks(xs, labels)
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[0].set_ylim(bottom=0)
    axes[1].axhline(1.0, color="#999999", linewidth=0.8, linestyle=":")
    axes[2].set_ylim(0, 1)
    return fig


def render_plots(stats: CardStats, out_dir: Path, *, label: str, previous: CardStats | None = None,
                 previous_label: str | None = None, history: Mapping[str, CardStats] | None = None) -> dict[str, str]:
    """Write the card's plots under `out_dir/plots/`; returns {title: path relative to out_dir}.
    With earlier revisions in `history` (oldest first), also the length-ratio and severity trend."""
    plots = Path(out_dir) / PLOTS_DIR
    plots.mkdir(parents=True, exist_ok=True)
    made = {
        "Self-critique issues": plot_error_types(stats, plots / "error_types.png", label=label, previous=previous,
                                                 previous_label=previous_label),
        "Answer lengths": plot_lengths(stats, plots / "answer_lengths.png"),
        "Composition": plot_composition(stats, plots / "composition.png"),
    }
    if history:
        current = label if label not in history else f"{label} (this revision)"
        made["Length ratio and severity across iterations"] = save_figure(
            trend_figure({**history, current: stats}), plots / "trend.png")
    return {title: p.relative_to(out_dir).as_posix() for title, p in made.items()}

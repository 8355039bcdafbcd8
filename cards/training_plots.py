"""The DPO training dynamics of `savi train` as a PNG (the paper's Appendix A.4, its Figure 4).

Four panels over the logged steps: chosen and rejected rewards, their margin, the preference
accuracy and the loss, each raw (faint) and Gaussian-smoothed. The paper smooths with sigma = 15;
we smooth over logged points with that sigma, capped at a quarter of the points so a short run
still shows its trend (the sigma used is in the figure). `dpo_dynamics_figure` builds the figure
(tests read its lines back); `render_training_plots` writes it where the model cards can link it.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videosavi.cards.plots import PLOTS_DIR, new_figure, save_figure

PAPER_SIGMA = 15.0
DYNAMICS_PNG = "dpo_dynamics.png"
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Rewards", ("rewards/chosen", "rewards/rejected")),
    ("Reward margin (chosen - rejected)", ("rewards/margins",)),
    ("Preference accuracy", ("rewards/accuracies",)),
    ("Loss", ("loss",)),
)
_COLORS = {"rewards/chosen": "#2e86c1", "rewards/rejected": "#c0392b", "rewards/margins": "#7d3c98",
           "rewards/accuracies": "#229954", "loss": "#555555"}


def gaussian_smooth(values: Sequence[float], sigma: float) -> list[float]:
    """Each point replaced by the Gaussian-weighted mean of its neighbours within 4 sigma; the
    weights are renormalised at the ends (no padding), so the curve starts and ends on the data."""
    y = np.asarray(values, dtype=float)
    if sigma <= 0 or y.size < 2:
        return y.tolist()
    radius = max(1, math.ceil(4 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    out = np.empty_like(y)
    for i in range(y.size):
        lo, hi = max(0, i - radius), min(y.size, i + radius + 1)
        w = kernel[lo - i + radius: hi - i + radius]
        out[i] = float(np.dot(w, y[lo:hi]) / w.sum())
    return out.tolist()


def smoothing_sigma(n_points: int) -> float:
    return min(PAPER_SIGMA, n_points / 4)


def series(history: Sequence[dict[str, float]], metric: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the logged steps that carry `metric`."""
    rows = [r for r in history if metric in r]
    return [float(r["step"]) for r in rows], [float(r[metric]) for r in rows]


def dpo_dynamics_figure(history: Sequence[dict[str, float]]) -> Any:
    """The four-panel figure (not saved); each metric as a raw and a smoothed line."""
    fig, axes = new_figure(11.0, 7.0, ncols=2, nrows=2)
    for ax, (title, metrics) in zip(axes.flat, PANELS, strict=True):
        for metric in metrics:
            steps, values = series(history, metric)
            if not steps:
                continue
            name = metric.split("/")[-1]
            sigma = smoothing_sigma(len(values))
            color = _COLORS[metric]
            ax.plot(steps, values, color=color, alpha=0.3, linewidth=1, label=f"{name} (raw)")
            ax.plot(steps, gaussian_smooth(values, sigma), color=color, linewidth=2,
                    label=f"{name} (smoothed, sigma {sigma:.3g})")
        if ax.lines:
            ax.legend(fontsize=7)
        ax.set_title(title)
        ax.set_xlabel("step")
    return fig


def has_dynamics(history: Sequence[dict[str, float]]) -> bool:
    return any(m in r for r in history for _, metrics in PANELS for m in metrics)


def render_training_plots(history: Sequence[dict[str, float]], out_dir: Path,
                          card_dirs: Sequence[Path] = ()) -> dict[str, str]:
    """Write `out_dir/plots/dpo_dynamics.png` and a copy beside each model card (so a card folder
    pushed alone still shows it); returns {title: path relative to a card folder}. Without logged
    metrics, stale plots of an earlier run are removed and nothing is returned."""
    targets = [Path(out_dir) / PLOTS_DIR / DYNAMICS_PNG, *(Path(d) / PLOTS_DIR / DYNAMICS_PNG for d in card_dirs)]
    if not has_dynamics(history):
        for path in targets:
            path.unlink(missing_ok=True)
        return {}
    save_figure(dpo_dynamics_figure(history), targets[0])
    for path in targets[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(targets[0], path)
    return {"DPO training dynamics": f"{PLOTS_DIR}/{DYNAMICS_PNG}"}

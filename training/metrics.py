"""The DPO curves the paper tracks (its Figure 4): loss, chosen/rejected rewards, margin, accuracy.

TRL logs many more numbers; these five are the ones that tell whether preference learning is
working (rewards separating, accuracy rising), so the card and train.json keep them per logged step.
An RRPO run (training/rrpo_trainer.py) logs the same five (its rewards are sums of phrase rewards)
and its own: the KL penalty, the mean reward per phrase, phrases per pair and the share of pairs
trained on the whole-response margin; train.json and the card keep those too.
"""

from __future__ import annotations

import math
from typing import Any

PAPER_METRICS: tuple[str, ...] = (
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
)

RRPO_METRICS: tuple[str, ...] = (
    "kl/chosen",
    "rewards/phrase_chosen",
    "rewards/phrase_rejected",
    "rewards/phrase_margins",
    "rrpo/phrases",
    "rrpo/whole_response",
)


def metric_names(rrpo: bool = False) -> tuple[str, ...]:
    """The metrics a run's card shows, in order."""
    return (*PAPER_METRICS, *RRPO_METRICS) if rrpo else PAPER_METRICS


def metrics_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """One entry per logged training step (`step` + the paper's metrics present at that step)."""
    history: list[dict[str, float]] = []
    for entry in log_history:
        if "loss" not in entry or "train_runtime" in entry:
            continue
        row: dict[str, float] = {"step": int(entry.get("step", len(history) + 1))}
        for name in (*PAPER_METRICS, *RRPO_METRICS, "epoch", "learning_rate"):
            if name in entry:
                row[name] = float(entry[name])
        history.append(row)
    return history


def final_metrics(history: list[dict[str, float]]) -> dict[str, float]:
    """The last logged value of each paper (and RRPO) metric (what the card headlines)."""
    out: dict[str, float] = {}
    for row in history:
        for name in (*PAPER_METRICS, *RRPO_METRICS):
            if name in row:
                out[name] = row[name]
    return out


def all_finite(history: list[dict[str, float]]) -> bool:
    return all(math.isfinite(v) for row in history for v in row.values())

"""Which pairs a training run uses: one question type (the paper's Table 7) and a seeded, stratified share
of the revision (its Figure 2). Pure functions over the rows' columns.

The share keeps the revision's mix: pairs are grouped by (source, question type), each group gives
`fraction` of its pairs (rounded so that the groups add up to the rounded share of the whole, the
largest remainders rounding up), and within a group the pairs kept are the first by a hash of (seed,
pair id). The choice therefore depends on the seed and the pairs only, not on their order, machine or
process, and the same seed keeps the same pairs in every run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from videosavi.hashing import stable_hash

QUESTION_TYPES = ("both", "spatial", "temporal")


@dataclass(frozen=True)
class Selection:
    """What `select_pairs` kept, for train.json and the card."""

    question_type: str
    fraction: float
    seed: int
    rows_in_revision: int
    rows_selected: int
    by_stratum: dict[str, list[int]] = field(default_factory=dict)  # "source/type" -> [kept, of]

    def to_dict(self) -> dict[str, Any]:
        return {"question_type": self.question_type, "fraction": self.fraction, "seed": self.seed,
                "rows_in_revision": self.rows_in_revision, "rows_selected": self.rows_selected,
                "by_stratum": dict(self.by_stratum)}


def quotas(sizes: dict[str, int], fraction: float) -> dict[str, int]:
    """Per group, how many to keep: `fraction` of each, summing to round(fraction x total)."""
    exact = {k: n * fraction for k, n in sizes.items()}
    kept = {k: math.floor(v) for k, v in exact.items()}
    left = round(sum(sizes.values()) * fraction) - sum(kept.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - kept[k]), k))[:max(0, left)]:
        kept[k] += 1
    return kept


def stratified_subset(strata: Sequence[str], ids: Sequence[str], fraction: float, seed: int) -> list[int]:
    """Indices (in the given order) of the rows kept: `fraction` of each stratum, seeded by pair id."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(strata):
        groups[key].append(i)
    keep = quotas({k: len(v) for k, v in groups.items()}, fraction)
    chosen: list[int] = []
    for key, members in groups.items():
        ranked = sorted(members, key=lambda i: (stable_hash([seed, ids[i]], 16), i))
        chosen += ranked[:keep[key]]
    return sorted(chosen)


def select_pairs(question_types: Sequence[str], sources: Sequence[str], ids: Sequence[str], *,
                 question_type: str = "both", fraction: float = 1.0, seed: int = 0) -> tuple[list[int], Selection]:
    """(indices kept, what was kept): rows of `question_type` ("both": all), then `fraction` of them."""
    if question_type not in QUESTION_TYPES:
        raise ValueError(f"question type must be one of {', '.join(QUESTION_TYPES)}, got {question_type!r}")
    typed = [i for i, t in enumerate(question_types) if question_type == "both" or t == question_type]
    strata = [f"{sources[i]}/{question_types[i]}" for i in typed]
    picked = [typed[j] for j in stratified_subset(strata, [ids[i] for i in typed], fraction, seed)] \
        if fraction < 1.0 else typed
    by: dict[str, list[int]] = {}
    for key in sorted(set(strata)):
        by[key] = [0, strata.count(key)]
    for i in picked:
        by[f"{sources[i]}/{question_types[i]}"][0] += 1
    return picked, Selection(question_type, fraction, seed, len(ids), len(picked), by)

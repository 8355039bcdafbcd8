"""Which pairs a human evaluation looks at: stratified by question type, one pair per video.

Counts per type are the dataset's proportions or equal (largest-remainder rounding, so they sum to
`n` exactly), or given explicitly (the paper's 516 videos were 261 temporal and 255 spatial:
`temporal=261,spatial=255`). All draws come from one seeded `random.Random` over sorted ids, so the
same data and seed give the same items whatever order the rows arrived in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from videosavi.errors import HumanEvalError
from videosavi.schemas import QUESTION_TYPES

DEFAULT_N = 516  # the paper's human evaluation
PerType = bool | str | Mapping[str, int]  # False/"proportional", True/"equal", or counts per question type


def parse_per_type(text: str) -> str | dict[str, int]:
    """`proportional`, `equal`, or explicit counts such as `temporal=261,spatial=255`."""
    value = text.strip()
    if value in ("proportional", "equal"):
        return value
    counts: dict[str, int] = {}
    for part in value.split(","):
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep or not number.strip().isdigit():
            raise HumanEvalError(f"--per-type {text!r}: expected proportional, equal, or counts such as "
                                 "temporal=261,spatial=255")
        if name not in QUESTION_TYPES:
            raise HumanEvalError(f"--per-type {text!r}: {name!r} is not a question type ({', '.join(QUESTION_TYPES)})")
        if name in counts:
            raise HumanEvalError(f"--per-type {text!r}: {name} is given twice")
        counts[name] = int(number)
    if not sum(counts.values()):
        raise HumanEvalError(f"--per-type {text!r}: the counts add up to zero")
    return counts


def _explicit(per_type: PerType) -> dict[str, int] | None:
    if isinstance(per_type, Mapping):
        return {t: int(per_type[t]) for t in QUESTION_TYPES if t in per_type}
    if isinstance(per_type, str) and per_type not in ("proportional", "equal"):
        parsed = parse_per_type(per_type)
        return parsed if isinstance(parsed, dict) else None
    return None


def largest_remainder(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split `n` in proportion to `weights`, rounding so the parts sum to `n` exactly.

    Each part gets the floor of its exact share; the leftover units go to the largest fractional
    remainders (ties: larger weight first, then name), the Hamilton method.
    """
    total = float(sum(weights.values()))
    if n < 0:
        raise ValueError("n must be >= 0")
    if total <= 0:
        if n:
            raise ValueError("cannot split a positive n over zero weights")
        return dict.fromkeys(weights, 0)
    exact = {k: n * w / total for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    left = n - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), -weights[k], k))[:left]:
        out[k] += 1
    return out


@dataclass(frozen=True)
class Selection:
    pairs: pl.DataFrame  # the chosen rows, one per video
    quotas: dict[str, int]  # question type -> items
    available_videos: int
    notes: list[str] = field(default_factory=list)


def select_pairs(
    df: pl.DataFrame, n: int | None = None, seed: int = 0, per_type: PerType = False, allow_fewer: bool = False
) -> Selection:
    """Pick `n` pairs from distinct videos, stratified by question type: dataset proportions, equal
    (`per_type=True` or "equal"), or explicit counts (a mapping, or "temporal=261,spatial=255"; `n`
    then defaults to their sum). Too few videos is an error unless `allow_fewer`, which exports what exists."""
    explicit = _explicit(per_type)
    if explicit is not None:
        total = sum(explicit.values())
        if n is not None and n != total:
            raise HumanEvalError(f"--n {n} differs from the --per-type counts, which add up to {total}: drop --n")
        n = total
    n = DEFAULT_N if n is None else n
    if n < 1:
        raise HumanEvalError("--n must be at least 1")
    rows = df.select("pair_id", "video_uid", "question_type").sort("pair_id")
    type_counts = {t: rows.filter(pl.col("question_type") == t).height for t in QUESTION_TYPES}
    if explicit is not None:
        types = [t for t in QUESTION_TYPES if explicit.get(t, 0) > 0]
    else:
        types = [t for t in QUESTION_TYPES if type_counts[t]]
    videos_of = {t: set(rows.filter(pl.col("question_type") == t)["video_uid"].to_list()) for t in types}
    all_videos = sorted(set(rows["video_uid"].to_list()))
    notes: list[str] = []
    if not all_videos:
        raise HumanEvalError("the dataset has no pairs to evaluate")
    if n > len(all_videos):
        msg = (f"--n {n} asks for more items than the dataset has videos ({len(all_videos)}); "
               f"one pair per video allows at most {len(all_videos)}")
        if not allow_fewer:
            raise HumanEvalError(msg + ": lower --n or pass --allow-fewer")
        notes.append(msg + f"; exporting {len(all_videos)}")
        n = len(all_videos)
    if explicit is not None:
        weights = {t: explicit[t] for t in types}
    elif per_type is True or per_type == "equal":
        weights = dict.fromkeys(types, 1)
    else:
        weights = {t: type_counts[t] for t in types}
    quotas = largest_remainder(n, weights)

    rng = random.Random(seed)
    order = list(all_videos)
    rng.shuffle(order)
    assignment = _assign(order, videos_of, quotas, exclusive_first=False)
    if assignment is None:  # a random draw used up videos a scarcer type needed: prefer single-type videos
        assignment = _assign(order, videos_of, quotas, exclusive_first=True)
    if assignment is None:
        short = {t: quotas[t] - len(videos_of[t]) for t in types if quotas[t] > len(videos_of[t])}
        detail = ", ".join(f"{t}: {quotas[t]} wanted" for t in short) or "the two types compete for the same videos"
        msg = f"not enough distinct videos for the stratified draw ({detail})"
        if not allow_fewer:
            raise HumanEvalError(msg + ": lower --n or the --per-type counts, or pass --allow-fewer")
        assignment = _assign_greedy(order, videos_of, quotas)
        got = {t: sum(1 for v_t in assignment.values() if v_t == t) for t in types}
        notes.append(msg + "; exporting " + ", ".join(f"{got[t]} {t}" for t in types))
        quotas = got

    ids_of: dict[tuple[str, str], list[str]] = {}
    for pair_id, video, qtype in rows.iter_rows():  # sorted by pair_id
        ids_of.setdefault((video, qtype), []).append(pair_id)
    chosen_ids = [rng.choice(ids_of[(video, assignment[video])]) for video in sorted(assignment)]
    picked = df.filter(pl.col("pair_id").is_in(chosen_ids)).unique("pair_id", keep="first").sort("pair_id")
    return Selection(pairs=picked, quotas=quotas, available_videos=len(all_videos), notes=notes)


def _assign(order: list[str], videos_of: dict[str, set[str]], quotas: dict[str, int],
            exclusive_first: bool) -> dict[str, str] | None:
    """video -> question type meeting every quota, or None. Scarcest type picks first."""
    assignment: dict[str, str] = {}
    for t in sorted(quotas, key=lambda t: (len(videos_of[t]), t)):
        candidates = [v for v in order if v in videos_of[t] and v not in assignment]
        if exclusive_first:
            candidates.sort(key=lambda v: sum(v in vs for vs in videos_of.values()))
        if len(candidates) < quotas[t]:
            return None
        for v in candidates[: quotas[t]]:
            assignment[v] = t
    return assignment


def _assign_greedy(order: list[str], videos_of: dict[str, set[str]], quotas: dict[str, int]) -> dict[str, str]:
    assignment: dict[str, str] = {}
    for t in sorted(quotas, key=lambda t: (len(videos_of[t]), t)):
        candidates = sorted((v for v in order if v in videos_of[t] and v not in assignment),
                            key=lambda v: sum(v in vs for vs in videos_of.values()))
        for v in candidates[: quotas[t]]:
            assignment[v] = t
    return assignment

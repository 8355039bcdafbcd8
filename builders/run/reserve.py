"""Exact pair quotas per source: which pairs a build keeps, and how many reserve videos it still needs.

The paper's iteration is 4,000 videos x (3 spatial + 3 temporal) = 24,000 pairs. Videos get lost on the
way (a file that does not decode, a reply quarantined, a pair curated away), so a source owes
`quota x spatial` spatial and `quota x temporal` temporal pairs, and its seeded rank order is its
reserve: the videos are walked in that order, each contributes its pairs while its type is still
short, and the walk stops once both types are met. Whatever lies after the stopping point (the last
video's extra pairs, or a reserve video that turned out not to be needed) is surplus, dropped and
counted.

Everything here is a pure function of the per-video outcomes in sample order. Those outcomes do not
depend on batching, sharding or resumes (every model call is seeded by what it is, not by when it
runs), so a one-process build, `--num-shards` + merge, Ray and a resumed build keep the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from videosavi.errors import ShortfallError
from videosavi.schemas import QUESTION_TYPES, BuildInfo, SourceFill

# Reserve requests assume at least this share of a new video's pairs survives, so a source that loses
# many pairs asks for more videos at once (fewer rounds) but never more than twice the plain estimate.
_MIN_YIELD = 0.5


@dataclass(frozen=True)
class VideoOutcome:
    """One sampled video as far as the build got: `types` holds its pairs' question types in row order;
    `done` is False while it has no part file yet (not processed, or left pending by call errors)."""

    seq: int
    source: str
    done: bool
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Targets:
    """Pairs owed per source and question type, and each source's first-draw video quota."""

    pairs: Mapping[str, Mapping[str, int]]
    quota: Mapping[str, int]
    per_video: Mapping[str, int]

    @classmethod
    def from_quotas(cls, quotas: Mapping[str, int], spatial: int, temporal: int) -> Targets:
        per_video = {"spatial": spatial, "temporal": temporal}
        pairs = {src: {t: q * n for t, n in per_video.items()} for src, q in quotas.items()}
        return cls(pairs=pairs, quota=dict(quotas), per_video=per_video)


@dataclass
class Selection:
    """Which rows of each part are kept (`keep[seq]` is a mask over the part's rows) and how each source
    was filled."""

    keep: dict[int, list[bool]] = field(default_factory=dict)
    fills: dict[str, SourceFill] = field(default_factory=dict)


def select_pairs(outcomes: Sequence[VideoOutcome], targets: Targets) -> Selection:
    """Walk each source's videos in sample order, keeping pairs while their type is short.

    A video that is not done contributes nothing yet; the walk goes on past it, so a partial build still
    shows its best rows, and the build reports the video as pending.
    """
    sel = Selection()
    got: dict[str, dict[str, int]] = {s: dict.fromkeys(QUESTION_TYPES, 0) for s in targets.pairs}
    seen: dict[str, int] = dict.fromkeys(targets.pairs, 0)
    for o in outcomes:
        want = targets.pairs.get(o.source)
        if want is None:  # a source no longer in the config: nothing of it is owed
            sel.keep[o.seq] = [False] * len(o.types)
            continue
        fill = sel.fills.setdefault(o.source, _empty_fill(o.source, targets))
        seen[o.source] += 1
        if not o.done:
            fill.pending_videos += 1
            continue
        have = got[o.source]
        met_before = all(have[t] >= want[t] for t in QUESTION_TYPES)
        mask: list[bool] = []
        for t in o.types:
            ok = have.get(t, 0) < want.get(t, 0)
            if ok:
                have[t] += 1
            mask.append(ok)
        sel.keep[o.seq] = mask
        fill.surplus_pairs += mask.count(False)
        from_reserve = seen[o.source] > targets.quota.get(o.source, 0)
        if not met_before:
            fill.videos_used += 1
            fill.reserve_videos_used += from_reserve
        else:
            fill.reserve_videos_unused += from_reserve
    for source in targets.pairs:
        fill = sel.fills.setdefault(source, _empty_fill(source, targets))
        fill.delivered_by_type = {t: got[source][t] for t in QUESTION_TYPES}
        fill.delivered_pairs = sum(fill.delivered_by_type.values())
        fill.shortfall_pairs = fill.requested_pairs - fill.delivered_pairs
    sel.fills = {source: sel.fills[source] for source in targets.pairs}  # config order, whatever came first
    return sel


def shortfall_message(fills: Mapping[str, SourceFill]) -> str | None:
    """One line naming every source whose pairs were not met and by how much; None when all were met.

    Called once the reserve is exhausted (no pending video, no reserve video left to draw), so a
    shortfall here means the source's manifest ran out, not that work is still to do."""
    short = [(s, f) for s, f in fills.items() if f.shortfall_pairs > 0]
    if not short:
        return None
    named = "; ".join(f"{s}: {f.delivered_pairs} of {f.requested_pairs} pairs (shortfall {f.shortfall_pairs}, "
                      f"{f.videos_used} videos used, {f.reserve_videos_used} of them reserve)" for s, f in short)
    return (f"the reserve ran out before every quota was met: {named}. The run directory is kept (build.json "
            "records the shortfall). Add videos to the manifest(s) and run the same command again, lower the "
            "quota, or pass --allow-shortfall to keep the run as it is (its card states the shortfall)")


def check_shortfall(info: BuildInfo, *, whole: bool) -> None:
    """`ShortfallError` for a whole, finished build (or merge) whose reserve ran out, unless it was built
    with `allow_shortfall`. A preview, one shard of several, or a build with pending videos is not judged
    here (the merge, or the next run, is)."""
    if not whole or info.allow_shortfall:
        return
    message = shortfall_message(info.counts.sources)
    if message is not None:
        raise ShortfallError(message)


def reserve_request(outcomes: Sequence[VideoOutcome], targets: Targets) -> dict[str, int]:
    """How many more videos each short source should walk, assuming pending videos deliver in full.

    A source that is met, or still has pending videos that could meet it, is absent. Otherwise it asks
    for enough videos to cover each type's deficit at full yield, and the whole deficit at the yield the
    source has shown so far (at least `_MIN_YIELD`): a lossy source asks for a few extra at once instead
    of one round per loss, a clean one for no more than it needs.
    """
    optimistic = [
        o if o.done else VideoOutcome(o.seq, o.source, True, _full_types(targets))
        for o in outcomes
    ]
    fills = select_pairs(optimistic, targets).fills
    request: dict[str, int] = {}
    for source, fill in fills.items():
        if fill.shortfall_pairs <= 0:
            continue
        deficit = {t: fill.requested_by_type[t] - fill.delivered_by_type[t] for t in QUESTION_TYPES}
        by_type = max((math.ceil(d / targets.per_video[t]) for t, d in deficit.items() if d > 0), default=1)
        rate = max(_yield_rate(outcomes, source, targets), _MIN_YIELD)
        by_yield = math.ceil(sum(deficit.values()) / (sum(targets.per_video.values()) * rate))
        request[source] = max(1, by_type, by_yield)
    return request


def _yield_rate(outcomes: Iterable[VideoOutcome], source: str, targets: Targets) -> float:
    """Share of the nominal pairs that this source's finished videos delivered (1.0 before any)."""
    nominal = sum(targets.per_video.values())
    done = [o for o in outcomes if o.source == source and o.done]
    if not done or not nominal:
        return 1.0
    return sum(len(o.types) for o in done) / (nominal * len(done))


def _full_types(targets: Targets) -> tuple[str, ...]:
    return tuple(t for t in QUESTION_TYPES for _ in range(targets.per_video[t]))


def _empty_fill(source: str, targets: Targets) -> SourceFill:
    want = targets.pairs[source]
    return SourceFill(
        quota_videos=targets.quota.get(source, 0),
        requested_pairs=sum(want.values()),
        requested_by_type={t: want.get(t, 0) for t in QUESTION_TYPES},
    )

"""`curate_video`: the per-video step the build runner calls between validation and writing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from videosavi.curation.filters.balance import balance_video
from videosavi.curation.filters.pair_filters import first_objection
from videosavi.curation_config import CurationConfig
from videosavi.schemas import PreferencePair


@dataclass(frozen=True)
class CurationResult:
    kept: list[PreferencePair] = field(default_factory=list)
    dropped: list[tuple[PreferencePair, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Dropped pairs by reason code (what `counts.filtered` of build.json adds up)."""
        return dict(Counter(reason for _, reason in self.dropped))


def curate_video(pairs: list[PreferencePair], cfg: CurationConfig) -> CurationResult:
    """Per-pair filters first (one reason per dropped pair), then the balance policy on the rest."""
    survivors: list[PreferencePair] = []
    dropped: list[tuple[PreferencePair, str]] = []
    for pair in pairs:
        reason = first_objection(pair, cfg)
        if reason is None:
            survivors.append(pair)
        else:
            dropped.append((pair, reason))
    kept, unbalanced = balance_video(survivors, cfg)
    return CurationResult(kept=kept, dropped=dropped + unbalanced)


def curate_pairs(pairs: Iterable[PreferencePair], cfg: CurationConfig) -> CurationResult:
    """`curate_video` over many videos (grouped by video_uid, first-seen order); for re-curating data."""
    by_video: dict[str, list[PreferencePair]] = {}
    for p in pairs:
        by_video.setdefault(p.video_uid, []).append(p)
    kept: list[PreferencePair] = []
    dropped: list[tuple[PreferencePair, str]] = []
    for video_pairs in by_video.values():
        res = curate_video(video_pairs, cfg)
        kept.extend(res.kept)
        dropped.extend(res.dropped)
    return CurationResult(kept=kept, dropped=dropped)

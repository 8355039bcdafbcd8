"""Per-video balance of spatial and temporal pairs (the paper keeps 3 + 3 per video).

When filters leave a video with, say, 3 spatial and 1 temporal pair, the policy decides: `keep`
them all, `trim` every type to the smallest count (and to `balance_per_type` if set), or drop the
whole video (`drop_video`) unless every type reaches the expected count.
"""

from __future__ import annotations

from videosavi.curation import reasons
from videosavi.curation_config import CurationConfig
from videosavi.schemas import QUESTION_TYPES, PreferencePair


def balance_video(
    pairs: list[PreferencePair], cfg: CurationConfig
) -> tuple[list[PreferencePair], list[tuple[PreferencePair, str]]]:
    """Apply the balance policy to one video's pairs; earlier pairs (question order) are kept first."""
    if not pairs or not cfg.enabled or cfg.balance == "keep":
        return list(pairs), []
    counts = {t: sum(p.question_type == t for p in pairs) for t in QUESTION_TYPES}
    if cfg.balance == "drop_video":
        required = cfg.balance_per_type or max(counts.values())
        if min(counts.values()) < required:
            return [], [(p, reasons.BALANCE_DROP_VIDEO) for p in pairs]
        target = required
    else:
        target = min(counts.values())
        if cfg.balance_per_type is not None:
            target = min(target, cfg.balance_per_type)
    kept: list[PreferencePair] = []
    dropped: list[tuple[PreferencePair, str]] = []
    taken = dict.fromkeys(QUESTION_TYPES, 0)
    for p in pairs:
        if taken[p.question_type] < target:
            taken[p.question_type] += 1
            kept.append(p)
        else:
            dropped.append((p, reasons.BALANCE_TRIM))
    return kept, dropped

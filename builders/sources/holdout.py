"""Which videos are reserved for evaluation: a pure predicate on the video uid.

A video is held out iff sha256(salt, source, uid), read as a number in [0, 1), is below the config's
`eval.holdout` share. The build sampler skips held-out videos and `savi eval make-set` draws only
from them, so no eval video can reach a build of that config, whatever its seed, shard or iteration.
The salt is distinct from the sampling key (sha256(seed, source, uid)), so the two orders are
independent: holding out 5% removes a uniform 5% of each source, not its first or last videos.
"""

from __future__ import annotations

import hashlib

from videosavi.config import EvalConfig

_SCALE = float(1 << 64)


def holdout_key(salt: str, source: str, video_uid: str) -> float:
    """The uid's position in [0, 1) under the holdout hash."""
    digest = hashlib.sha256(f"holdout\x1f{salt}\x1f{source}\x1f{video_uid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def is_held_out(rule: EvalConfig | None, source: str, video_uid: str) -> bool:
    """True if `video_uid` belongs to the eval pool (never when the config has no `eval` section)."""
    return rule is not None and holdout_key(rule.salt, source, video_uid) < rule.holdout


def eval_rank_key(salt: str, seed: int, source: str, video_uid: str) -> int:
    """The order in which the eval set draws held-out videos (distinct from both other hashes)."""
    digest = hashlib.sha256(f"eval-order\x1f{salt}\x1f{seed}\x1f{source}\x1f{video_uid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")

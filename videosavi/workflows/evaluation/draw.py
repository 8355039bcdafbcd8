"""The held-out videos an eval set draws from, in one fixed order.

Only candidates `builders/sources/holdout.py` reserves are ever drawn (the build sampler skips exactly
these). Each source's held-out candidates are walked in the order of their eval rank key; the
sources are interleaved in proportion to their build quotas (2,000 STAR : 1,000 VIDAL : 1,000 WebVid
gives STAR every other video), so any prefix of the stream mirrors the training mix. A source that
runs dry leaves the rest of the stream to the others. Files are checked and hashed only as reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from videosavi.builders.decode.errors import DecodeError
from videosavi.builders.decode.source_files import hash_source
from videosavi.builders.sources import PROBLEM, collect, read_source
from videosavi.builders.sources.holdout import eval_rank_key, is_held_out
from videosavi.builders.sources.sampler import file_status, rank_candidates
from videosavi.config import BuildConfig, EvalConfig, SourceConfig
from videosavi.errors import ConfigError
from videosavi.schemas import VideoRef


def require_holdout(cfg: BuildConfig, what: str) -> EvalConfig:
    """The config's eval rule, or a clear error: without it builds could draw the eval videos."""
    if cfg.eval is None:
        raise ConfigError(
            f"{what} needs a config with an `eval: {{holdout: 0.05}}` section: builds of that config then skip "
            "the held-out videos, and only those can enter an eval set (add it before the first build)"
        )
    return cfg.eval


def held_out_candidates(name: str, src: SourceConfig, data_root: Path, cfg: BuildConfig) -> pl.DataFrame:
    """One source's usable, held-out candidates, sorted by eval rank key (then uid)."""
    rule = require_holdout(cfg, "an eval set")
    frame = collect(read_source(name, src, data_root).drop("caption"), f"the manifest of source {name!r}")
    ranked = rank_candidates(frame.filter(pl.col(PROBLEM).is_null()), cfg.seed, name)
    parts = []
    for part in ranked.iter_slices(200_000):
        keep = [is_held_out(rule, name, uid) for uid in part["uid"].to_list()]
        parts.append(part.filter(pl.Series(keep, dtype=pl.Boolean)))
    held = pl.concat(parts) if parts else ranked
    keys = [eval_rank_key(rule.salt, cfg.seed, name, uid) for uid in held["uid"].to_list()]
    return held.with_columns(pl.Series("rank", keys, dtype=pl.UInt64)).sort(["rank", "uid"])


def _walk(name: str, src: SourceConfig, data_root: Path, cfg: BuildConfig) -> Iterator[VideoRef]:
    """The source's held-out videos in eval order: available ones hashed, others marked unavailable."""
    root = data_root / src.root
    for r in held_out_candidates(name, src, data_root, cfg).iter_rows(named=True):
        try:
            video = VideoRef(source=name, video_id=r["video_id"], video_path=r["video_path"],
                             clip_start=r["clip_start"], clip_end=r["clip_end"])
        except ValidationError:
            continue  # the build sampler rejects such rows too
        reason = file_status(root, video.video_path, src.follow_symlinks)
        if reason is None:
            try:
                yield video.model_copy(update={"sha256": hash_source(root, video.video_path,
                                                                     follow_symlinks=src.follow_symlinks)})
                continue
            except (OSError, DecodeError) as exc:
                reason = getattr(exc, "reason", "unreadable")
        yield video.model_copy(update={"available": False, "unavailable_reason": reason})


def eval_candidates(cfg: BuildConfig, data_root: Path) -> Iterator[VideoRef]:
    """All sources' held-out videos, interleaved by quota (see the module docstring)."""
    order = {name: i for i, name in enumerate(cfg.sources)}
    quotas = {name: src.quota for name, src in cfg.sources.items() if src.quota > 0}
    walks = {name: _walk(name, cfg.sources[name], Path(data_root), cfg) for name in quotas}
    taken = dict.fromkeys(walks, 0)
    while walks:
        name = min(walks, key=lambda s: ((taken[s] + 1) / quotas[s], order[s]))
        video = next(walks[name], None)
        if video is None:
            del walks[name]
            continue
        taken[name] += 1
        yield video


def find_held_out(cfg: BuildConfig, data_root: Path, uids: list[str]) -> tuple[dict[str, VideoRef], list[str]]:
    """The held-out videos with these uids (hashed, or marked unavailable), and the uids that are not
    held out by this config (a build could draw those, so they cannot be eval videos)."""
    wanted = set(uids)
    found: dict[str, VideoRef] = {}
    for name, src in cfg.sources.items():
        held = held_out_candidates(name, src, Path(data_root), cfg).filter(pl.col("uid").is_in(list(wanted)))
        root = Path(data_root) / src.root
        for r in held.iter_rows(named=True):
            video = VideoRef(source=name, video_id=r["video_id"], video_path=r["video_path"],
                             clip_start=r["clip_start"], clip_end=r["clip_end"])
            reason = file_status(root, video.video_path, src.follow_symlinks)
            if reason is None:
                try:
                    digest = hash_source(root, video.video_path, follow_symlinks=src.follow_symlinks)
                    found[r["uid"]] = video.model_copy(update={"sha256": digest})
                    continue
                except (OSError, DecodeError) as exc:
                    reason = getattr(exc, "reason", "unreadable")
            found[r["uid"]] = video.model_copy(update={"available": False, "unavailable_reason": reason})
    return found, [u for u in uids if u not in found]

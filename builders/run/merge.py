"""Merge shards built separately (`--num-shards S --shard-index I`) into one run directory.

Parts carry global sequence numbers, so concatenating them in order gives exactly the rows of an
unsharded build; counts are re-derived from the shards' build.json files and the merged rows.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from videosavi.builders.run import shards
from videosavi.builders.run.counts import add_pair_counts
from videosavi.builders.run.reserve import check_shortfall, reserve_request, select_pairs
from videosavi.builders.run.top_up import extend_runs, outcomes, quota_targets
from videosavi.config import BuildConfig, resolve_data_root
from videosavi.errors import DatasetError, ReserveNeededError, VideosaviError
from videosavi.locking import exclusive
from videosavi.logs import event, run_log
from videosavi.run_dir import RunDir
from videosavi.schemas import BuildCounts, BuildInfo, RetrospectiveInfo, StageCounts, VideoRef

log = logging.getLogger(__name__)


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def merge_counts(infos: Sequence[BuildInfo]) -> BuildCounts:
    total = BuildCounts()
    for info in infos:
        c = info.counts
        for name in ("videos_sampled", "videos_done", "videos_skipped", "questions"):
            setattr(total, name, getattr(total, name) + getattr(c, name))
        for name in ("skip_reasons", "no_pair_reasons", "filtered"):
            _add(getattr(total, name), getattr(c, name))
        for stage, sc in c.stages.items():
            t = total.stages.setdefault(stage, StageCounts())
            for f in ("calls", "cached", "retries", "quarantined"):
                setattr(t, f, getattr(t, f) + getattr(sc, f))
    return total


def merge_retrospective(infos: Sequence[BuildInfo]) -> RetrospectiveInfo | None:
    """Every shard read the same previous descriptions; the videos each described add up."""
    parts = [i.retrospective for i in infos if i.retrospective is not None]
    if not parts:
        return None
    return parts[0].model_copy(update={"videos_described": sum(p.videos_described for p in parts),
                                       "videos_with_previous": sum(p.videos_with_previous for p in parts)})


def merge_shards(out: Path, shard_dirs: Sequence[Path], data_root: Path | None = None,
                 top_up: bool = True, allow_shortfall: bool = False) -> BuildInfo:
    """Merge the shards into `out`, keeping each source's quota of pairs.

    When the merged shards are short of pairs (lost videos, quarantined or curated pairs) and the
    sources have more videos, the next reserve videos are appended to every shard's sample and
    `ReserveNeededError` says to build the shards again (the same commands resume them) and merge again.
    `data_root` locates the manifests for that walk (default: `$VIDEOSAVI_DATA_ROOT` or the cwd).
    The target and every shard are locked for the merge: a shard still being built is refused, as is a
    second merge into the same target. When a source's reserve has run out, the merged run is written
    and `ShortfallError` names the shortfall, unless `allow_shortfall` (or the shards were built with it).
    """
    missing = [str(d) for d in shard_dirs if not RunDir(d).build_json.is_file()]
    if not shard_dirs or missing:
        raise DatasetError(
            f"no finished shard in {', '.join(missing) or 'the arguments'}: merge-shards OUT SHARD_DIR... takes the "
            "run directories of finished shard builds (each has a build.json)"
        )
    with ExitStack() as held:
        for d in [out, *shard_dirs]:
            held.enter_context(exclusive(d, "savi merge-shards"))
        held.enter_context(run_log(out))
        return _merge_locked(out, shard_dirs, data_root, top_up, allow_shortfall)


def reserve_added_message(request: dict[str, int], more: Sequence[VideoRef]) -> str:
    """What a reserve round added, per source: the videos that can be built, against those asked for
    (a source near the end of its manifest may give fewer, or some turn out unavailable)."""
    added = Counter(v.source for v in more if v.available)
    per_source = ", ".join(f"{s}: {added.get(s, 0)} of {n} asked" for s, n in sorted(request.items()))
    return (f"the shards are short of pairs; {sum(added.values())} reserve video(s) were added to every shard's "
            f"videos.parquet ({per_source}). Run the same shard builds again (they resume), then merge-shards again.")


def _merge_locked(out: Path, shard_dirs: Sequence[Path], data_root: Path | None, top_up: bool,
                  allow_shortfall: bool) -> BuildInfo:
    runs = [RunDir(d) for d in shard_dirs]
    infos = [r.read_build_info() for r in runs]
    first = infos[0]
    for d, info in zip(shard_dirs, infos, strict=True):
        if (info.config_hash, info.model.revision, info.prompt_version, info.iteration) != (
            first.config_hash, first.model.revision, first.prompt_version, first.iteration
        ):
            raise VideosaviError(f"{d} was built with another config, model, prompts or iteration than {shard_dirs[0]}")
    keys = {r.read_sample_key() for r in runs}
    if len(keys) > 1:
        raise VideosaviError(f"the shards in {', '.join(map(str, shard_dirs))} were sampled with different "
                             "sources or seeds; build every shard from the same config")
    indices = sorted(i.shard_index for i in infos if i.shard_index is not None)
    expected = first.num_shards or len(infos)
    if indices != list(range(expected)):
        raise VideosaviError(f"need shards 0..{expected - 1} exactly once, got {indices}")
    cfg = BuildConfig.model_validate(first.config)
    videos = merged_videos([r.read_videos() for r in runs])
    part_dirs = [r.path for r in runs]
    found = outcomes(part_dirs, videos, first.limit_videos)
    if top_up and first.limit_videos is None and all(o.done for o in found):
        request = reserve_request(found, quota_targets(cfg))
        more = extend_runs(cfg, resolve_data_root(data_root), videos, request, runs, runs[0].read_sample_key()) \
            if request else []
        if any(v.available for v in more):
            log.warning(event("merge_needs_reserve", videos=sum(v.available for v in more), asked=request,
                              added=dict(Counter(v.source for v in more if v.available))))
            raise ReserveNeededError(reserve_added_message(request, more))
    selection = select_pairs(found, quota_targets(cfg))
    target = RunDir(out)
    target.path.mkdir(parents=True, exist_ok=True)
    names = shards.finalize(target.path, cfg.output.pairs_per_shard, part_dirs=part_dirs, keep=selection.keep)
    target.write_videos(videos, runs[0].read_sample_key())
    target.write_prompts(runs[0].read_prompts())
    target.write_quarantine(q for r in runs for q in r.read_quarantine())
    target.write_skipped(s for r in runs for s in r.read_skipped())
    counts = merge_counts(infos)
    counts.sources = selection.fills
    add_pair_counts(counts, target.read_pairs_table())
    timings = {k: round(max(i.timings.get(k, 0.0) for i in infos), 3) for k in first.timings}
    allow = allow_shortfall or all(i.allow_shortfall for i in infos)
    merged = first.model_copy(update={"counts": counts, "shards": names, "shard_index": None, "num_shards": None,
                                      "timings": timings, "retrospective": merge_retrospective(infos),
                                      "allow_shortfall": allow})
    merged = target.write_final_build_info(merged)
    log.info(event("merged", run=str(target.path), shards=len(runs), pairs=counts.pairs,
                   videos_done=counts.videos_done, videos_skipped=counts.videos_skipped))
    check_shortfall(merged, whole=first.limit_videos is None and all(o.done for o in found))
    return merged


def merged_videos(per_shard: Sequence[list[VideoRef]]) -> list[VideoRef]:
    """One sample for the merged run: every shard holds the same videos in the same order, and each has
    filled in what decoding learnt (duration, fps, frame count) of its own videos only."""
    out = list(per_shard[0])
    for videos in per_shard[1:]:
        out = [mine if mine.num_frames is not None else theirs for mine, theirs in zip(out, videos, strict=True)]
    return out

"""Merge shards built separately (`--num-shards S --shard-index I`) into one run directory.

Parts carry global sequence numbers, so concatenating them in order gives exactly the rows of an
unsharded build; counts are re-derived from the shards' build.json files and the merged rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from videosavi.builders import shards
from videosavi.builders.counts import add_pair_counts
from videosavi.builders.run_dir import RunDir
from videosavi.errors import VideosaviError
from videosavi.schemas import BuildCounts, BuildInfo, StageCounts, VideoRef


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


def merge_shards(out: Path, shard_dirs: Sequence[Path]) -> BuildInfo:
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
    target = RunDir(out)
    target.path.mkdir(parents=True, exist_ok=True)
    names = shards.finalize(target.path, first.config.get("output", {}).get("pairs_per_shard", 5000),
                            part_dirs=[r.path for r in runs])
    target.write_videos(merged_videos([r.read_videos() for r in runs]), runs[0].read_sample_key())
    target.write_prompts(runs[0].read_prompts())
    target.write_quarantine(q for r in runs for q in r.read_quarantine())
    target.write_skipped(s for r in runs for s in r.read_skipped())
    counts = merge_counts(infos)
    add_pair_counts(counts, shards.read_table(target.path))
    timings = {k: round(max(i.timings.get(k, 0.0) for i in infos), 3) for k in first.timings}
    merged = first.model_copy(update={"counts": counts, "shards": names, "shard_index": None, "num_shards": None,
                                      "timings": timings})
    target.write_build_info(merged)
    return merged


def merged_videos(per_shard: Sequence[list[VideoRef]]) -> list[VideoRef]:
    """One sample for the merged run: every shard holds the same videos in the same order, and each has
    filled in what decoding learnt (duration, fps, frame count) of its own videos only."""
    out = list(per_shard[0])
    for videos in per_shard[1:]:
        out = [mine if mine.num_frames is not None else theirs for mine, theirs in zip(out, videos, strict=True)]
    return out

"""Reserve videos on disk: read how far a build got from its part files, and append the next videos
of each short source's seeded order to the sample (`videos.parquet`) of every run directory that
builds from it.

The decision itself is `reserve.reserve_request`, a pure function of the outcomes; this module only
gathers them and writes the extended sample. Appending keeps every earlier video's sequence number,
so parts, caches and shards of a resumed or sharded build stay valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from videosavi.builders.run import shards
from videosavi.builders.run.reserve import Targets, VideoOutcome
from videosavi.builders.sources.sampler import extend_sample
from videosavi.config import BuildConfig
from videosavi.run_dir import RunDir
from videosavi.schemas import VideoRef


def quota_targets(cfg: BuildConfig) -> Targets:
    """What the config owes: quota x spatial and quota x temporal pairs per source."""
    return Targets.from_quotas({name: src.quota for name, src in cfg.sources.items()},
                               cfg.questions.spatial, cfg.questions.temporal)


def available_videos(videos: Sequence[VideoRef], limit: int | None = None) -> list[tuple[int, VideoRef]]:
    """(sequence number, video) of the available videos in sample order: the numbering parts use."""
    available = [v for v in videos if v.available]
    if limit is not None:
        available = available[:limit]
    return list(enumerate(available))


def outcomes(part_dirs: Sequence[Path], videos: Sequence[VideoRef], limit: int | None = None) -> list[VideoOutcome]:
    """Every selected video with the question types of its written pairs (not done: no part yet)."""
    types = shards.part_question_types(part_dirs)
    return [VideoOutcome(seq, v.source, seq in types, types.get(seq, ()))
            for seq, v in available_videos(videos, limit)]


def extend_runs(cfg: BuildConfig, data_root: Path, videos: list[VideoRef], request: dict[str, int],
                runs: Sequence[RunDir], sample_key: str | None) -> list[VideoRef]:
    """Walk each requested source further and write the extended sample to every run in `runs`.

    Returns the new videos, unavailable ones met on the walk included (recorded with their reason);
    none of them available means every requested source has run out.
    """
    more = extend_sample(cfg, data_root, videos, request)
    if not more:
        return []
    extended = [*videos, *more]
    for run in runs:
        run.write_videos(extended, sample_key)
    return more

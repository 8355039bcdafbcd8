"""Run a build's shards as Ray tasks, then merge them into exactly the layout of a local run.

Each task builds one shard (`--num-shards S --shard-index I`) into `OUT/shards/shard-I` with its own
SQLite cache, so a lost worker's shard is simply retried (Ray `max_retries`) and resumes from its
cache; parts carry global sequence numbers, so the merge equals an unsharded build. One model replica
per task: a GPU each when the cluster has GPUs, else CPU. The driver samples once and hands every
shard the same `videos.parquet`, so files are hashed once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from videosavi.builders.runner import BuildOptions, BuildResult


def _shard_dir(out: Path, index: int) -> Path:
    return out / "shards" / f"shard-{index}"


def _build_shard(opts_dict: dict[str, Any]) -> dict[str, Any]:
    """Ray task body (module-level so workers can import it)."""
    from videosavi.builders.runner import BuildOptions, run_build

    result = run_build(BuildOptions(**opts_dict))
    return {"run_dir": str(result.run_dir), "pending": result.pending_videos, "pairs": result.info.counts.pairs}


def run_build_ray(opts: BuildOptions, address: str | None = None, num_shards: int | None = None,
                  max_retries: int = 3) -> BuildResult:
    import ray

    from videosavi.builders.merge import merge_shards
    from videosavi.builders.run_dir import RunDir
    from videosavi.builders.sampler import sample_key, sample_videos
    from videosavi.config import load_config, resolve_data_root

    out = opts.run_dir()
    if opts.force:
        import shutil

        shutil.rmtree(out / "shards", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                 runtime_env={"env_vars": _forwarded_env()})
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        default_n = max(gpus, int(resources.get("CPU", 1)), 1)
        shards_n = num_shards or (opts.num_shards if opts.num_shards > 1 else default_n)
        cfg = load_config(opts.config, opts.overrides or None)
        data_root = resolve_data_root(opts.data_root)
        main_run = RunDir(out)
        if main_run.videos.exists() and not opts.force:
            videos = main_run.read_videos()
        else:
            videos = list(sample_videos(cfg, data_root, progress=opts.progress).videos)
            main_run.write_videos(videos, sample_key(cfg))
        task = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=max_retries)(_build_shard)
        refs = []
        for i in range(shards_n):
            shard = _shard_dir(out, i)
            if opts.force or not RunDir(shard).videos.exists():
                RunDir(shard).write_videos(videos, sample_key(cfg))
            shard_opts = dataclasses.replace(
                opts, out=shard, num_shards=shards_n, shard_index=i, progress=False, force=False,
                data_root=str(data_root), config=str(opts.config) if opts.config else None,
            )
            refs.append(task.remote(_opts_dict(shard_opts)))
        results = ray.get(refs)
    finally:
        if started_here:
            ray.shutdown()
    info = merge_shards(out, [_shard_dir(out, i) for i in range(shards_n)])
    return BuildResult(out, info, sum(r["pending"] for r in results))


def _opts_dict(opts: BuildOptions) -> dict[str, Any]:
    d = dataclasses.asdict(opts)
    for k in ("out", "data_root", "config"):
        if d[k] is not None:
            d[k] = str(d[k])
    return d


def _forwarded_env() -> dict[str, str]:
    import os

    keys = ("VIDEOSAVI_CACHE", "VIDEOSAVI_DATA_ROOT", "HF_HOME", "HF_HUB_OFFLINE", "HF_ENDPOINT",
            "TOKENIZERS_PARALLELISM")
    return {k: os.environ[k] for k in keys if k in os.environ}

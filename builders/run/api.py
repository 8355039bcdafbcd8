"""The Python entry point of a build: `run_build(BuildConfig, ...)`, exported as `videosavi.run_build`.

    from videosavi import load_config, run_build
    cfg = load_config("configs/videosavi.yaml")             # or BuildConfig(...) built in code
    result = run_build(cfg, iteration=1, out="runs/iter1", data_root="/data")
    result = run_build(cfg.model_copy(update={"seed": 7}), out="runs/seed7", executor="ray", address="auto")

A config is changed as the object it is (`model_copy`), not through a dict of overrides. The command
line builds the same `BuildOptions` and calls the same executor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videosavi.builders.run.executors.base import Executor, get_executor
from videosavi.builders.run.runner import BuildOptions, BuildResult
from videosavi.config import BuildConfig
from videosavi.errors import ConfigError


def run_build(config: BuildConfig, *, iteration: int = 1, out: str | Path | None = None,
              data_root: str | Path | None = None, model: str | None = None, limit_videos: int | None = None,
              num_shards: int = 1, shard_index: int = 0, force: bool = False,
              previous: str | None = None, allow_random_weights: bool = False, allow_shortfall: bool = False,
              executor: str | Executor = "local", **executor_options: Any) -> BuildResult:
    """Build (or resume) one iteration of `config` into `out` (default runs/iterN), with the executor
    named `executor` (`local`, `ray`; `executor_options` such as `address=` go to it). Progress bars
    follow `videosavi.disable_progress_bars()` / `enable_progress_bars()`.

    `model` replaces the config's model (a tiny-* name, a hub id or a folder: the previous iteration's
    merged model); `previous` is the previous iteration's run directory (retrospective builds).
    A source whose reserve runs out is `ShortfallError` unless `allow_shortfall` (see BuildOptions).

    A build whose model calls failed for every video, or for more than `stages.max_failed_share` of them,
    raises `BuildStoppedError` after writing build.json (its `stopped` says why); the same call resumes it."""
    if not isinstance(config, BuildConfig):
        raise ConfigError(f"run_build takes a BuildConfig, got {type(config).__name__}: read a file with "
                          "videosavi.load_config(path)")
    opts = BuildOptions(iteration=iteration, config=config, data_root=data_root, out=out, model=model,
                        limit_videos=limit_videos, num_shards=num_shards, shard_index=shard_index, force=force,
                        previous=previous, allow_random_weights=allow_random_weights,
                        allow_shortfall=allow_shortfall)
    runner = get_executor(executor, **executor_options) if isinstance(executor, str) else executor
    return runner.run(opts)

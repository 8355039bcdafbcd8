"""The Python entry point of a build: `run_build(BuildConfig, ...)`, exported as `videosavi.run_build`.

    from videosavi import load_config, run_build
    cfg = load_config("configs/videosavi.yaml")             # or BuildConfig(...) built in code
    result = run_build(cfg, iteration=1, out="runs/iter1", data_root="/data")
    result = run_build(cfg.model_copy(update={"seed": 7}), out="runs/seed7", executor="ray", address="auto")

A config is changed as the object it is (`model_copy`), not through a dict of overrides. Its keywords are
the build options (`videosavi.build_options.BuildOptions`: the same as `savi build`'s flags), the executor
and the executor's own options; the command line builds the same `BuildOptions` and calls the same executor.
"""

from __future__ import annotations

from typing import Any

from videosavi.build_options import BuildOptions, api_fields, options_doc
from videosavi.builders.run.executors.base import Executor, get_executor
from videosavi.builders.run.runner import BuildResult
from videosavi.config import BuildConfig
from videosavi.errors import ConfigError


def run_build(config: BuildConfig, *, executor: str | Executor = "local", **options: Any) -> BuildResult:
    """Build (or resume) one iteration of `config` into `out` (default runs/iterN), with the executor
    named `executor` (`local`, `ray`; the keywords that are no build option, such as `address=`, go to
    it). Progress bars follow `videosavi.disable_progress_bars()` / `enable_progress_bars()`.

    A source whose reserve runs out is `ShortfallError` unless `allow_shortfall`. A build whose model calls
    failed for every video, or for more than `stages.max_failed_share` of them, raises `BuildStoppedError`
    after writing build.json (its `stopped` says why); the same call resumes it.

    The build options:"""
    if not isinstance(config, BuildConfig):
        raise ConfigError(f"run_build takes a BuildConfig, got {type(config).__name__}: read a file with "
                          "videosavi.load_config(path)")
    names = {f.name for f in api_fields()}
    opts = BuildOptions(config=config, **{k: v for k, v in options.items() if k in names})
    rest = {k: v for k, v in options.items() if k not in names}
    runner = get_executor(executor, **rest) if isinstance(executor, str) else executor
    if rest and not isinstance(executor, str):
        raise TypeError(f"run_build() got unexpected keyword arguments: {', '.join(rest)}")
    return runner.run(opts)


run_build.__doc__ = f"{run_build.__doc__}\n{options_doc()}\n"

"""The executor interface and its registry: an executor runs one whole build (`BuildOptions`) and
returns the same `BuildResult` and the same rows, however it spreads the work.

An executor starts from the runner's public planning functions (`runner.resolve_config`,
`runner.load_or_sample`, `runner.select_videos`) and builds videos with `runner.run_build`, one
shard per call where it splits the work; it reads nothing else of the runner. Executors are found by
name (`savi build --executor NAME`, `videosavi.run_build(..., executor=NAME)`): `local` (this process)
and `ray` (shards as Ray tasks, then merged). A new one registers with `register_executor`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from videosavi.errors import ConfigError

if TYPE_CHECKING:
    from videosavi.builders.run.runner import BuildOptions, BuildResult


@runtime_checkable
class Executor(Protocol):
    name: str

    def run(self, opts: BuildOptions) -> BuildResult:
        """Build (or resume) `opts` to the end: shards, build.json, the run directory's final layout."""
        ...


# name -> "module:factory" (imported when asked for: Ray's module is not loaded by a local build)
_REGISTRY: dict[str, str | Callable[..., Executor]] = {
    "local": "videosavi.builders.run.executors.local:LocalExecutor",
    "ray": "videosavi.builders.run.executors.ray_executor:RayExecutor",
}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    """Make `factory(**options)` the executor called `name`."""
    _REGISTRY[name] = factory


def executor_names() -> list[str]:
    return sorted(_REGISTRY)


def get_executor(name: str, **options: Any) -> Executor:
    """The executor `name`, made with `options` (e.g. `address=` for ray); a ConfigError names the others."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigError(f"unknown executor {name!r}: use one of {', '.join(executor_names())}")
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry(**options)

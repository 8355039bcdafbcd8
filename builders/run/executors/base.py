"""The executor interface, the base every executor of ours builds on, and the registry.

An executor runs one whole build (`BuildOptions`) and returns the same `BuildResult` and the same rows,
however it spreads the work. What a build is does not depend on the executor and lives once, in the
runner's driver (`runner.drive`): planning (the config, the run directory and its lock, the sample),
the reserve top-up between rounds, and completion (build.json, the stopped and shortfall verdicts).
An executor says only how a round of work is launched: `BaseExecutor.start(plan) -> Work`.

    local  the run directory's videos in this process (`runner.InProcessWork`)
    ray    one shard per Ray task, each an in-process build of OUT/shards/shard-I, merged at the end

Executors are found by name (`savi build --executor NAME`, `videosavi.run_build(..., executor=NAME)`);
a new one registers with `register_executor` (any object with `name` and `run` will do).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from videosavi.builders.run.runner import drive
from videosavi.errors import ConfigError

if TYPE_CHECKING:
    from videosavi.builders.run.runner import BuildOptions, BuildResult, Plan, Work


@runtime_checkable
class Executor(Protocol):
    name: str

    def run(self, opts: BuildOptions) -> BuildResult:
        """Build (or resume) `opts` to the end: shards, build.json, the run directory's final layout."""
        ...


class BaseExecutor(ABC):
    """An executor that differs from the others only in how it launches work (`start`)."""

    name: ClassVar[str]
    holder: ClassVar[str] = "savi-build"  # how a second build trying the same run directory is told who holds it

    def run(self, opts: BuildOptions) -> BuildResult:
        return drive(self.prepare(opts), self.start, holder=self.holder)

    def prepare(self, opts: BuildOptions) -> BuildOptions:
        """The options the driver runs (an executor that splits the build itself makes them one whole build)."""
        return opts

    @abstractmethod
    def start(self, plan: Plan) -> Work:
        """Start the build's work (load models, connect to a cluster); the driver runs its rounds."""


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

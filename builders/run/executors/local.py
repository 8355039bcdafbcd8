"""The local executor: the whole build in this process (the runner itself)."""

from __future__ import annotations

from dataclasses import dataclass

from videosavi.builders.run.runner import BuildOptions, BuildResult, run_build


@dataclass
class LocalExecutor:
    name: str = "local"

    def run(self, opts: BuildOptions) -> BuildResult:
        return run_build(opts)

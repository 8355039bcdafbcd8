"""The local executor: the whole build in this process (`runner.InProcessWork`)."""

from __future__ import annotations

from dataclasses import dataclass

from videosavi.builders.run.executors.base import BaseExecutor
from videosavi.builders.run.runner import InProcessWork, Plan, Work


@dataclass
class LocalExecutor(BaseExecutor):
    name = "local"

    def start(self, plan: Plan) -> Work:
        return InProcessWork(plan)

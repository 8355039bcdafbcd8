"""When failing model calls make a build fail, and the one line that says why.

A video whose model calls fail (the server down, answering 5xx, timing out) is left pending for the next
run; a few of those are weather, and the build completes with a note to run it again. But a build that
loses every call, or more than `stages.max_failed_share` of its videos, has not made the dataset it was
asked for: it stops, records the reason in build.json's `stopped` and exits non-zero, and the same command
resumes once the server is fixed (finished videos are kept; the failed ones were never marked done).

The verdict is taken as early as it is certain: once more than the share of all selected videos have
failed in this run, the rest are not tried (they could not make the build succeed), so a dead server
costs one window of retries, not a day of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from videosavi.builders.generate.pipeline_items import VideoResult

_ERROR_CHARS = 300


@dataclass
class CallFailures:
    """This run's videos lost to failing model calls, against the videos it selected."""

    max_share: float
    selected: int
    failed: int = 0
    done: int = 0
    by_stage: Counter = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)

    def add(self, res: VideoResult) -> None:
        if res.status == "done":
            self.done += 1
            return
        self.failed += 1
        stage = res.failed_stage or "unknown"
        self.by_stage[stage] += 1
        self.first_error.setdefault(stage, " ".join((res.call_error or "unknown error").split()))

    @property
    def tried(self) -> int:
        return self.failed + self.done

    def verdict(self, pending: int, videos_done: int) -> str | None:
        """Why the build failed (one line), or None: `pending` videos are left (this run's failures and
        any it did not try) and `videos_done` finished, this run's and earlier runs' together."""
        if pending <= 0 or (pending <= self.max_share * self.selected and videos_done > 0):
            return None
        return self.reason(pending)

    def stop_early(self) -> bool:
        """Whether to stop now: the build can no longer succeed, whatever the untried videos do."""
        return self.failed > self.max_share * self.selected

    def reason(self, pending: int) -> str:
        """One line: how many videos failed, at which stage, with the first error the server gave."""
        if not self.by_stage:
            return f"{pending} of {self.selected} videos are pending (their model calls failed in an earlier run)"
        stages = self.by_stage.most_common()
        top, _ = stages[0]
        where = (f"the {top} stage" if len(stages) == 1
                 else "the " + ", ".join(f"{s} ({n})" for s, n in stages) + " stages")
        error = self.first_error[top]
        error = error if len(error) <= _ERROR_CHARS else error[:_ERROR_CHARS] + "..."
        line = f"{self.failed} of {self.tried} videos failed at {where}: {error}"
        untried = self.selected - self.tried
        if untried > 0 and self.stop_early():
            line += (f"; stopped before the other {untried} (more than {self.max_share:.0%} of {self.selected} "
                     "would fail: stages.max_failed_share)")
        return line

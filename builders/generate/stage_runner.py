"""Run one stage over many tasks: cache lookups, batched model calls, parsing, bounded retries.

Misses go to the backend in batches of `batch_size` and each batch's results are committed to the
cache before the next batch starts. A malformed reply is retried with a fresh seed up to
`max_attempts` times, then given up with its raw text and reason (the caller quarantines it).
Transport errors (timeouts, HTTP 5xx after the backend's own retries) are retried with the *same*
seed, on a budget of their own: the data must not depend on when a server hiccuped, so a call that
finally gets through returns what an undisturbed run would have got. If they persist the outcome is
marked `transient` and the caller leaves the video for the next run instead of recording it as done.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from videosavi._faults import failpoint
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.call_keys import call_key, call_seed, video_key
from videosavi.builders.generate.models.base import GenerationRequest, ModelBackend
from videosavi.builders.generate.stages.base import Parser, StageOutcome
from videosavi.builders.generate.stages.parsing import ParseError
from videosavi.logs import event
from videosavi.schemas import StageCounts

log = logging.getLogger(__name__)

# what a caller names its tasks by; `run` returns their outcomes under the same keys
K = TypeVar("K", bound=Hashable)


@dataclass
class StageTask(Generic[K]):
    task_id: K
    stage: str
    video_uid: str
    video_sha256: str
    frame_indices: list[int]
    frames: np.ndarray | None
    messages: list[dict]
    params: dict[str, Any]
    json_schema: dict | None
    slot: int
    parse: Parser


@dataclass
class CallContext:
    """What every call key shares within a build."""

    model: str
    revision: str
    prompt_hashes: dict[str, str]
    base_seed: int
    iteration: int
    max_attempts: int


@dataclass(frozen=True)
class StageModel:
    """Another model answering one stage's calls (an external critic): its backend, and its name and
    revision for the call keys."""

    backend: ModelBackend
    model: str
    revision: str


@dataclass
class StageRunner:
    backend: ModelBackend
    cache: CallCache
    ctx: CallContext
    batch_size: int = 8
    stage_models: dict[str, StageModel] = field(default_factory=dict)  # stage -> the model that answers it
    counts: dict[str, StageCounts] = field(default_factory=dict)  # this process's, see `save_counts`
    model_seconds: float = 0.0
    process_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def totals(self) -> dict[str, dict[str, int]]:
        return {stage: c.model_dump() for stage, c in self.counts.items()}

    def save_counts(self) -> None:
        """Persist this process's counts in the cache (they also travel with every stored batch)."""
        self.cache.save_counts(self.process_id, self.totals())

    def run(self, tasks: Sequence[StageTask[K]]) -> dict[K, StageOutcome]:
        before = {s: self._stage_counts(s).model_copy() for s in {t.stage for t in tasks}}
        seconds_before = self.model_seconds
        outcomes: dict[K, StageOutcome] = {t.task_id: StageOutcome() for t in tasks}
        seed_attempt: dict[K, int] = {t.task_id: 1 for t in tasks}  # advances on malformed replies only
        call_errors: dict[K, int] = {t.task_id: 0 for t in tasks}  # transport failures so far
        pending = list(tasks)
        round_no = 0
        while pending:
            round_no += 1
            keyed = []
            for t in pending:
                seed = call_seed(self.ctx.base_seed, self.ctx.iteration, t.video_uid, t.stage, t.slot,
                                 seed_attempt[t.task_id])
                other = self.stage_models.get(t.stage)
                key = call_key(
                    model=other.model if other else self.ctx.model,
                    revision=other.revision if other else self.ctx.revision,
                    prompt_hash=self.ctx.prompt_hashes[t.stage],
                    video_sha256=t.video_sha256, frame_indices=t.frame_indices, messages=t.messages,
                    params=t.params, json_schema=t.json_schema, seed=seed,
                )
                keyed.append((t, seed, key))
            cached = self.cache.get_many(k for _, _, k in keyed)
            misses = [(t, s, k) for t, s, k in keyed if k not in cached]
            if round_no > 1:
                for t, _, _ in keyed:
                    self._stage_counts(t.stage).retries += 1
            fresh: dict[str, tuple[str, str]] = {}
            errors: dict[str, str] = {}
            for backend, chunk in self._batches(misses):
                requests = [
                    GenerationRequest(frames=t.frames, messages=t.messages, temperature=t.params["temperature"],
                                      top_p=t.params["top_p"], max_new_tokens=t.params["max_new_tokens"],
                                      json_schema=t.json_schema, seed=s,
                                      video_key=video_key(t.video_sha256, t.frame_indices))
                    for t, s, _ in chunk
                ]
                start = time.perf_counter()
                results = backend.generate(requests)
                self.model_seconds += time.perf_counter() - start
                store, failed = [], []
                for (t, _, k), r in zip(chunk, results, strict=True):
                    self._stage_counts(t.stage).calls += 1
                    if r.finish_reason == "error":
                        errors[k] = r.error or "unknown error"
                        failed.append((k, t.stage, t.video_uid, errors[k]))
                    else:
                        fresh[k] = (r.text, r.finish_reason)
                        store.append((k, t.stage, t.video_uid, r.text, r.finish_reason))
                self.cache.put_many(store, counts=(self.process_id, self.totals()))
                if failed:
                    self.cache.log_errors(failed)
                failpoint("model_batch")
            next_pending = []
            for t, _, k in keyed:
                out = outcomes[t.task_id]
                out.attempts = seed_attempt[t.task_id]
                if k in cached:
                    self._stage_counts(t.stage).cached += 1
                    text, finish = cached[k].text, cached[k].finish_reason
                elif k in fresh:
                    text, finish = fresh[k]
                else:
                    out.reason, out.detail, out.transient = "call_error", errors.get(k, ""), True
                    call_errors[t.task_id] += 1
                    again = call_errors[t.task_id] < self.ctx.max_attempts
                    log.warning(event("call_error", stage=t.stage, video=t.video_uid, slot=t.slot,
                                      failures=call_errors[t.task_id], retry=again, error=out.detail[:300]))
                    if again:
                        next_pending.append(t)
                    continue
                last = seed_attempt[t.task_id] >= self.ctx.max_attempts
                out.text, out.finish_reason = text, finish
                try:
                    out.value = t.parse(text, finish, last)
                    out.reason, out.detail, out.transient = None, "", False
                except ParseError as exc:
                    out.reason, out.detail, out.transient = exc.reason, exc.detail, False
                    if not last:
                        seed_attempt[t.task_id] += 1
                        next_pending.append(t)
                        log.info(event("retry", stage=t.stage, video=t.video_uid, slot=t.slot,
                                       attempt=seed_attempt[t.task_id], reason=exc.reason))
            pending = next_pending
        for t in tasks:
            out = outcomes[t.task_id]
            if not out.ok and not out.transient:
                self._stage_counts(t.stage).quarantined += 1
        self.save_counts()
        for stage, was in before.items():
            now = self._stage_counts(stage)
            log.info(event("stage", stage=stage, tasks=sum(t.stage == stage for t in tasks),
                           calls=now.calls - was.calls, cached=now.cached - was.cached,
                           retries=now.retries - was.retries, quarantined=now.quarantined - was.quarantined,
                           model_seconds=round(self.model_seconds - seconds_before, 2)))
        return outcomes

    def _batches(self, misses: list[Any]) -> list[tuple[ModelBackend, list[Any]]]:
        """The misses in batches of at most `batch_size`, none mixing two models (a stage answered by
        another model, such as an external critic, goes to that model)."""
        out: list[tuple[ModelBackend, list[Any]]] = []
        for item in misses:
            backend = self._backend(item[0].stage)
            if out and out[-1][0] is backend and len(out[-1][1]) < self.batch_size:
                out[-1][1].append(item)
            else:
                out.append((backend, [item]))
        return out

    def _backend(self, stage: str) -> ModelBackend:
        other = self.stage_models.get(stage)
        return other.backend if other else self.backend

    def _stage_counts(self, stage: str) -> StageCounts:
        return self.counts.setdefault(stage, StageCounts())

"""`savi-build`: sample -> decode -> four stages -> validate -> curate -> shards, resumable.

The runner streams videos through a decoder pool (bounded prefetch), groups them into windows for
batched model calls, and writes each finished video's pairs as a part file before recording the video
as done in the SQLite resume cache. A re-run of the same command skips finished videos and answers
already-made calls from the cache, so a crash or `kill -9` loses nothing and duplicates nothing;
finalising (parts -> `data/` shards, `build.json`) depends only on persisted state.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from videosavi._faults import failpoint
from videosavi.build_options import BuildOptions
from videosavi.builders.generate.batching import windows
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.pipeline_items import DecodedVideo, PipelineContext, VideoResult
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stage_runner import CallContext, StageModel, StageRunner
from videosavi.builders.generate.stages import check_stage_sections, load_prompts, stage_classes
from videosavi.builders.generate.video_pipeline import VideoPipeline
from videosavi.builders.run import shards
from videosavi.builders.run.call_failures import CallFailures
from videosavi.builders.run.counts import add_pair_counts
from videosavi.builders.run.disk_full import disk_full_error
from videosavi.builders.run.reserve import check_shortfall, reserve_request, select_pairs
from videosavi.builders.run.retrospective import PreviousContext, matched_share_warning, resolve_previous
from videosavi.builders.run.top_up import available_videos, extend_runs, outcomes, quota_targets
from videosavi.builders.version import BUILDER_VERSION
from videosavi.config import BuildConfig, load_config, resolve_data_root
from videosavi.errors import BuildStoppedError, ConfigError, RunDirMismatchError
from videosavi.hashing import canonical_json
from videosavi.locking import exclusive
from videosavi.logs import event, run_log
from videosavi.out_guard import check_apart, check_folder, claim_folder
from videosavi.progress import progress_bar, progress_bars_enabled
from videosavi.run_dir import RunDir, atomic_write_text
from videosavi.schemas import (
    BuildCounts,
    BuildInfo,
    ModelInfo,
    QuarantineRecord,
    RetrospectiveInfo,
    StageCounts,
    VideoRef,
    VideoSkip,
)
from videosavi.version import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    from videosavi.builders.decode.pool import FrameDecoderPool
    from videosavi.builders.generate.models.base import ModelBackend

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    run_dir: Path
    info: BuildInfo
    pending_videos: int
    # The backend's work counters (`BackendStats.as_dict()`: vision encodes, prefill tokens, prefix
    # cache hits); operational, like timings, so kept out of build.json's data.
    model_stats: dict[str, Any] = field(default_factory=dict)


def apply_model_override(cfg: BuildConfig, model: str | None) -> BuildConfig:
    """`--model` takes a tiny model name, a hub id or a local directory (the previous iteration's
    trained model); an OpenAI-compatible config keeps its backend and only changes the served name."""
    if not model:
        return cfg
    data = cfg.model_dump()
    data["model"]["name_or_path"] = model
    if cfg.model.backend != "openai":
        data["model"]["backend"] = "tiny" if model.startswith("tiny-") and not Path(model).exists() else "transformers"
        data["model"]["revision"] = None
    return BuildConfig.model_validate(data)


def check_random_weights(cfg: BuildConfig, model: str | None, allow: bool) -> None:
    """A random-weight model writes meaningless pairs: build with one only when something asks for it
    (the config's model section names it, as the demo config does; `--model tiny-*`; or `allow`), never
    because a config left its model out and the default filled in."""
    if allow or cfg.model.backend != "tiny":
        return
    if model is not None or "model" in cfg.model_fields_set:
        return
    raise ConfigError(
        "the config names no model, so this build would use tiny-qwen2-vl, a random-weight test model whose "
        "text is meaningless: name one under model: (docs/models.md), pass --model, or pass "
        "--allow-random-weights to build with the test model anyway")


def resolve_config(opts: BuildOptions) -> BuildConfig:
    """The config a build runs: `opts.config` as given or read (with its overrides), the random-weight
    check, then `--model`. The local runner and every executor start from this."""
    cfg = opts.config if isinstance(opts.config, BuildConfig) else load_config(opts.config, opts.overrides or None)
    if isinstance(opts.config, BuildConfig) and opts.overrides:
        raise ConfigError("overrides apply to a config read from a file; change the BuildConfig itself instead")
    check_stage_sections(cfg)
    check_random_weights(cfg, opts.model, opts.allow_random_weights)
    return apply_model_override(cfg, opts.model)


def display_model_name(name_or_path: str) -> str:
    """Rows carry no machine-specific absolute paths: a local model is named by its last two parts."""
    p = Path(name_or_path)
    if p.is_absolute() or p.exists():
        return "/".join(p.resolve().parts[-2:])
    return name_or_path


def generation_json(cfg: BuildConfig, others: Mapping[str, ModelInfo] | None = None) -> str:
    """Each row's `generation`: the seed and the sampling parameters of every stage the build runs; a stage
    answered by another model (`stages.critique.model`, an external critic) also names it (backend, model,
    revision) under `critic`."""
    stages = {s.name: s.sampling(cfg).model_dump(exclude={"model"}) for s in stage_classes(cfg)}
    for name, info in (others or {}).items():
        stages[name]["critic"] = {"backend": info.backend, "name_or_path": info.name_or_path,
                                  "revision": info.revision}
    return canonical_json({"seed": cfg.seed, **stages})


def _spec(cfg: BuildConfig, info: ModelInfo, prompts: PromptSet, opts: BuildOptions, data_root: Path,
          previous: PreviousContext | None = None) -> dict:
    return {
        "previous": previous.fingerprint if previous is not None else None,
        "config_hash": cfg.data_hash(),
        "model": info.name_or_path,
        "model_revision": info.revision,
        "prompt_version": prompts.version,
        "builder_version": BUILDER_VERSION,
        "iteration": opts.iteration,
        "limit_videos": opts.limit_videos,
        "num_shards": opts.num_shards,
        "shard_index": opts.shard_index,
    }


def _check_spec(cache: CallCache, spec: dict, run: RunDir, force: bool) -> None:
    old = cache.get_meta("spec")
    if old is None:
        cache.set_meta("spec", canonical_json(spec))
        return
    old_spec = json.loads(old)
    diff = sorted(k for k in set(spec) | set(old_spec) if spec.get(k) != old_spec.get(k))
    if not diff:
        return
    if not force:
        details = ", ".join(f"{k}: {old_spec.get(k)!r} -> {spec.get(k)!r}" for k in diff)
        raise RunDirMismatchError(
            f"{run.path} was built with a different setup ({details}). Use another --out, or --overwrite to "
            "discard its results and start over."
        )
    cache.set_meta("spec", canonical_json(spec))


BUILD_COMMAND = "savi-build"
SHARDS_DIR = "shards"  # the shards an executor that splits the build writes under its run directory
# What a build (its shards, merges and Ray driver included) writes at a run directory's top level.
RUN_DIR_ENTRIES = ("build.json*", "videos.*", "data", "parts", "shards", "cache.sqlite*", "quarantine.jsonl*",
                   "skipped.jsonl*", "prompts", "build.log*")


def guard_run_dir(path: Path, cfg: BuildConfig, data_root: Path, force: bool) -> None:
    """The run directory must stay apart from the videos it reads (a source root, the data root itself),
    and `--overwrite` discards only a run directory a build wrote (videosavi/out_guard.py)."""
    roots = {f"root of source {name}": data_root / src.root for name, src in cfg.sources.items()}
    check_apart(path, roots, containers={"data root": data_root})
    check_folder(path, BUILD_COMMAND, owned=RUN_DIR_ENTRIES, replacing=force, flag="--overwrite", legacy="cache.sqlite")


def _wipe(run: RunDir) -> None:
    """`--force`: everything a build of any executor wrote (parts, data, its shards' folders, the cache, the
    sample, build.json), so the run starts over."""
    import shutil

    for p in [run.path / shards.PARTS_DIR, run.data_dir, run.path / SHARDS_DIR]:
        shutil.rmtree(p, ignore_errors=True)
    for p in [run.cache_db, Path(str(run.cache_db) + "-wal"), Path(str(run.cache_db) + "-shm"), run.videos,
              run.build_json]:
        p.unlink(missing_ok=True)


def select_videos(
    videos: list[VideoRef], limit: int | None, num_shards: int, shard_index: int
) -> list[tuple[int, VideoRef]]:
    """(global sequence number, video) of this shard's share of the available sample."""
    if not 0 <= shard_index < num_shards:
        raise ConfigError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    return [(seq, v) for seq, v in available_videos(videos, limit) if seq % num_shards == shard_index]


def load_or_sample(run: RunDir, cfg: BuildConfig, data_root: Path) -> list[VideoRef]:
    """The run's persisted sample, or a fresh one written to it: a resumed (or sharded, or Ray) build
    must process exactly the videos the first attempt drew, even if files changed since."""
    from videosavi.builders.sources.sampler import sample_key, sample_videos

    key = sample_key(cfg)
    if run.videos.exists():
        found = run.read_sample_key()
        if found is not None and found != key:
            raise RunDirMismatchError(
                f"{run.videos} was sampled with other sources or seed than this config; use another --out, "
                "or --overwrite to resample"
            )
        videos = run.read_videos()
        log.info(event("sample_reused", videos=len(videos), available=sum(v.available for v in videos)))
        return videos
    videos = list(sample_videos(cfg, data_root).videos)
    run.write_videos(videos, key)
    log.info(event("sampled", videos=len(videos), available=sum(v.available for v in videos),
                   by_source=dict(Counter(v.source for v in videos if v.available))))
    return videos



# --- the driver: one build, however its work is launched -------------------------------------------------
# Planning (config, run directory, the sample), the reserve top-up between rounds, and completion
# (build.json, the stopped verdict, the shortfall check) happen here once, for every executor; an executor
# only says how a round of the work runs (`Launch`: this process, Ray tasks, ...). builders/run/executors/.


@dataclass
class Plan:
    """A build as every executor starts it: its options, resolved config, run directory (held by this
    process), the previous iteration's descriptions, and the sample (extended by reserve rounds)."""

    opts: BuildOptions
    cfg: BuildConfig
    data_root: Path
    run: RunDir
    previous: PreviousContext | None
    videos: list[VideoRef] = field(default_factory=list)
    timings: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def tops_up(self) -> bool:
        """Whether reserve videos join between rounds: not while the build is a preview (`--limit-videos`)
        or one shard of several built apart (merging decides for all of them at once)."""
        return self.opts.limit_videos is None and self.opts.num_shards == 1


class Work(Protocol):
    """A build's work once started (an executor's `start`): rounds over the sample, then the finished run."""

    part_dirs: list[Path]  # where the videos' part files are written
    runs: list[RunDir]  # every run directory that builds from the sample (a reserve round extends each)
    model_stats: dict[str, Any]  # the backend's work counters, where the work ran in this process

    def round(self, videos: list[VideoRef]) -> int:
        """Build every video of `videos` not built yet; returns how many were left pending."""
        ...

    def finish(self) -> BuildInfo:
        """The run's build.json content, its data written (shards finalised, or merged)."""
        ...

    def close(self) -> None: ...


Launch = Callable[[Plan], "Work"]


def run_build(opts: BuildOptions) -> BuildResult:
    """Build (or resume) one iteration into `opts.out` in this process (the `local` executor), then
    finalise shards and build.json.

    A full disk surfaces as `DiskFullError` (one actionable line in the CLI): every write is atomic,
    so freeing space and re-running the same command resumes without loss.
    """
    return drive(opts, InProcessWork.start)


def drive(opts: BuildOptions, launch: Launch, holder: str = BUILD_COMMAND) -> BuildResult:
    """The one build driver: plan, hold the run directory, sample, run rounds (`launch` says where) with a
    reserve top-up between them, finish and complete the run. `holder` names this build to a second one."""
    try:
        return _drive(opts, launch, holder)
    except (OSError, sqlite3.Error) as exc:
        full = disk_full_error(exc, opts.run_dir())
        if full is None:
            raise
        raise full from exc


def _drive(opts: BuildOptions, launch: Launch, holder: str) -> BuildResult:
    t_start = time.perf_counter()
    cfg = resolve_config(opts)
    data_root = resolve_data_root(opts.data_root)
    previous = resolve_previous(retrospective=cfg.retrospective, iteration=opts.iteration, previous=opts.previous,
                                descriptions=opts.previous_descriptions, name=cfg.name, origin=opts.previous_origin)
    run = RunDir(opts.run_dir())
    guard_run_dir(run.path, cfg, data_root, opts.force)
    # The lock comes before anything touches the directory: `--overwrite` must never wipe a run that
    # another live build is writing (it is refused instead, naming that build).
    with exclusive(run.path, holder):
        claim_folder(run.path, BUILD_COMMAND, RUN_DIR_ENTRIES)
        if opts.force:
            _wipe(run)
        with run_log(run.path):
            plan = Plan(opts, cfg, data_root, run, previous)
            log.info(event("build_start", run=str(run.path), iteration=opts.iteration, config=cfg.name,
                           force=opts.force, shard=f"{opts.shard_index}/{opts.num_shards}",
                           limit_videos=opts.limit_videos, builder=BUILDER_VERSION, videosavi=__version__,
                           pid=os.getpid()))
            t0 = time.perf_counter()
            plan.videos = load_or_sample(run, cfg, data_root)
            plan.timings["sample_s"] += time.perf_counter() - t0
            work = launch(plan)
            try:
                while True:  # one round per reserve top-up; the first round is the sample as drawn
                    pending = work.round(plan.videos)
                    more = _reserve_round(plan, work) if plan.tops_up and not pending else []
                    if not any(v.available for v in more):
                        break
                    log.info(event("reserve_top_up", videos=sum(v.available for v in more),
                                   by_source=dict(Counter(v.source for v in more if v.available))))
                    plan.videos = [*plan.videos, *more]
                prior = run.build_json.read_text(encoding="utf-8") if run.build_json.is_file() else None
                info = work.finish()
            finally:
                work.close()
            return _complete(plan, info, prior, pending, work.model_stats, t_start)


def _reserve_round(plan: Plan, work: Work) -> list[VideoRef]:
    """Reserve videos for every source short of its pairs, over all of the build's parts, appended to the
    sample of every run directory that builds from it (none: every short source has run out)."""
    request = reserve_request(outcomes(work.part_dirs, plan.videos), quota_targets(plan.cfg))
    if not request:
        return []
    return extend_runs(plan.cfg, plan.data_root, plan.videos, request, work.runs, plan.run.read_sample_key())


def _complete(plan: Plan, info: BuildInfo, prior: str | None, pending: int, model_stats: dict[str, Any],
              t_start: float) -> BuildResult:
    """build.json of the finished run (a run finished before with the same result keeps its file byte for
    byte), then the verdicts: a build stopped by failing model calls, or short of its quota."""
    run, opts = plan.run, plan.opts
    info.timings = {**info.timings, "total_s": round(time.perf_counter() - t_start, 3)}
    if prior is not None and run.build_json.read_text(encoding="utf-8") != prior:
        atomic_write_text(run.build_json, prior)  # finishing (a merge) wrote it: compare with the run before
    info = run.write_final_build_info(info)
    if model_stats:
        log.info(event("model_work", **model_stats))
    c = info.counts
    log.info(event("build_done", pairs=c.pairs, videos_done=c.videos_done, videos_skipped=c.videos_skipped,
                   pending=pending, quarantined=sum(s.quarantined for s in c.stages.values()),
                   shards=len(info.shards), seconds=info.timings["total_s"], stopped=info.stopped))
    if info.stopped:
        fix = "fix the model server" if plan.cfg.model.backend == "openai" else "fix what made the model calls fail"
        raise BuildStoppedError(f"the build did not complete: {info.stopped}. Finished videos are kept in "
                                f"{run.path}: {fix} and run the same command to resume", run_dir=run.path)
    check_shortfall(info, whole=opts.num_shards == 1 and opts.limit_videos is None and not pending)
    return BuildResult(run.path, info, pending, model_stats)


# --- the work in this process: the local executor, and each shard task of the others ------------------------


class InProcessWork:
    """The run directory's videos built here: the model loaded once for every round, a decoder pool, the
    call cache; `finish` finalises the parts into shards and build.json's content."""

    def __init__(self, plan: Plan) -> None:
        from videosavi.builders.decode.pool import FrameDecoderPool
        from videosavi.builders.decode.source_decode import decode_sampled_video
        from videosavi.builders.generate.models.loader import load_backend

        self.plan = plan
        cfg, opts, run = plan.cfg, plan.opts, plan.run
        self.part_dirs, self.runs = [run.path], [run]
        self.model_stats: dict[str, Any] = {}
        self.prompts = load_prompts(cfg)
        if not progress_bars_enabled() and cfg.model.backend in ("tiny", "transformers"):  # no weight-loading bars
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        self._closing: list[Callable[[], Any]] = []
        try:
            t0 = time.perf_counter()
            self.backend = load_backend(cfg.model)
            self._closing.append(self.backend.close)
            others: dict[str, ModelBackend] = {}  # stage -> another model that answers it (an external critic)
            for stage in stage_classes(cfg):
                other_cfg = stage.model(cfg)
                if other_cfg is not None:
                    others[stage.name] = load_backend(other_cfg)
                    self._closing.append(others[stage.name].close)
            plan.timings["model_load_s"] += time.perf_counter() - t0
            info = self.backend.info
            log.info(event("model_loaded", model=info.name_or_path, revision=info.revision,
                           backend=cfg.model.backend, seconds=round(plan.timings["model_load_s"], 1)))
            for other in others.values():
                log.info(event("critic_loaded", model=other.info.name_or_path, revision=other.info.revision,
                               backend=other.info.backend))
            self.cache = CallCache(run.cache_db)
            self._closing.insert(0, self.cache.close)
            _check_spec(self.cache, _spec(cfg, info, self.prompts, opts, plan.data_root, plan.previous), run,
                        opts.force)
            run.write_prompts(self.prompts.templates)
            self.runner = StageRunner(self.backend, self.cache, CallContext(
                model=info.name_or_path, revision=info.revision, prompt_hashes=self.prompts.hashes,
                base_seed=cfg.seed, iteration=opts.iteration, max_attempts=cfg.stages.max_attempts),
                batch_size=cfg.model.batch_size,
                stage_models={name: StageModel(other, other.info.name_or_path, other.info.revision)
                              for name, other in others.items()})
            previous = plan.previous
            self.pipeline = VideoPipeline(self.runner, PipelineContext(
                cfg=cfg, curation=cfg.curation, prompts=self.prompts, iteration=opts.iteration,
                model_name=display_model_name(info.name_or_path), model_revision=info.revision,
                builder_version=BUILDER_VERSION,
                generation_json=generation_json(cfg, {name: other.info for name, other in others.items()}),
                previous_descriptions=previous.descriptions if previous is not None else {}))
            self.window = opts.window or cfg.model.batch_size
            selected = self._selected(plan.videos)
            few = matched_share_warning(previous, (v.video_uid for _, v in selected)) if previous is not None else None
            if few:
                log.warning(few)
            finished = self.cache.finished_videos()
            done_before = sum(1 for seq, _ in selected if seq in finished and shards.has_part(run.path, seq))
            log.info(event("videos", selected=len(selected), done_before=done_before,
                           todo=len(selected) - done_before, window=self.window))
            self.failures = CallFailures(cfg.stages.max_failed_share, len(selected))
            self.bar = _Progress(len(selected), done_before).__enter__()
            self._closing.insert(0, lambda: self.bar.__exit__(None, None, None))
            self.pool = FrameDecoderPool(
                workers=cfg.frames.workers, timeout_s=cfg.frames.timeout_s,
                max_tasks_per_worker=cfg.frames.max_tasks_per_worker, task_fn=decode_sampled_video).__enter__()
            self._closing.insert(0, lambda: self.pool.__exit__(None, None, None))
            self._selected_count = len(selected)
        except BaseException:
            self.close()
            raise

    @classmethod
    def start(cls, plan: Plan) -> InProcessWork:
        return cls(plan)

    def _selected(self, videos: list[VideoRef]) -> list[tuple[int, VideoRef]]:
        o = self.plan.opts
        return select_videos(videos, o.limit_videos, o.num_shards, o.shard_index)

    def round(self, videos: list[VideoRef]) -> int:
        plan, run = self.plan, self.plan.run
        selected = self._selected(videos)
        if len(selected) > self._selected_count:  # reserve videos joined the build
            self.bar.add_total(len(selected) - self._selected_count)
            self._selected_count = self.failures.selected = len(selected)
        finished = self.cache.finished_videos()
        todo = [(seq, v) for seq, v in selected if seq not in finished or not shards.has_part(run.path, seq)]
        return _process(todo, run, plan.cfg, plan.data_root, self.cache, self.pipeline, self.pool, self.bar,
                        self.window, plan.timings, self.failures)

    def finish(self) -> BuildInfo:
        plan, timings = self.plan, self.plan.timings
        timings["model_s"] = self.runner.model_seconds
        t0 = time.perf_counter()
        self.runner.save_counts()
        totals = {stage: StageCounts.model_validate(c) for stage, c in self.cache.stage_totals().items()}
        info = finalize_run(plan.run, plan.cfg, self.backend.info, self.prompts, plan.opts, self.cache, totals,
                            plan.previous)
        timings["finalize_s"] += time.perf_counter() - t0
        info.timings = {k: round(v, 3) for k, v in timings.items()}
        c = info.counts
        info.stopped = self.failures.verdict(c.skip_reasons.get("pending_call_error", 0), c.videos_done)
        stats = getattr(self.backend, "stats", None)
        self.model_stats = stats.as_dict() if stats is not None else {}
        return info

    def close(self) -> None:
        """The pool, the bar, the cache, then the models: each once, each even when one before it failed."""
        error: BaseException | None = None
        while self._closing:
            try:
                self._closing.pop(0)()
            except BaseException as exc:  # the first failure is raised once everything is closed
                error = error or exc
        if error is not None:
            raise error


def _process(todo: list[tuple[int, VideoRef]], run: RunDir, cfg: BuildConfig, data_root: Path, cache: CallCache,
             pipeline: VideoPipeline, pool: FrameDecoderPool, bar: _Progress, window: int,
             timings: defaultdict[str, float], failures: CallFailures) -> int:
    """Decode and build `todo` a window at a time; returns how many videos were left pending. Stops after the
    window in which the build's failure became certain (`CallFailures.stop_early`)."""
    by_key = dict(todo)

    def task(seq: int, v: VideoRef) -> tuple:  # see `source_decode.decode_sampled_video`
        src = cfg.sources[v.source]
        root = data_root / src.root
        return (seq, str(root / v.video_path), str(root), v.video_path, src.follow_symlinks, v.sha256,
                cfg.frames.num_frames, v.clip_start, v.clip_end, cfg.frames.resize)

    stream = pool.decode_many((task(seq, v) for seq, v in todo), prefetch=max(window, cfg.frames.workers) * 2)
    pending = 0
    t_wait = time.perf_counter()
    for group in windows(stream, window):
        timings["decode_wait_s"] += time.perf_counter() - t_wait
        decoded: list[DecodedVideo] = []
        for seq, out in group:
            video = by_key[seq]
            if isinstance(out, Exception):
                reason = getattr(out, "reason", "decode_error")
                shards.write_video_part(run.path, seq, [])
                cache.mark_video(seq, video.video_uid, "skipped",
                                 {"skip_reason": reason, "message": str(out)[:500]}, [])
                log.warning(event("video_skipped", seq=seq, video=video.video_uid, reason=reason,
                                  detail=str(out)[:300]))
                bar.advance(0)
            else:
                decoded.append(DecodedVideo(seq, video, out))
        t_proc = time.perf_counter()
        for res in pipeline.process(decoded) if decoded else []:
            pending += _persist(run, cache, res)
            failures.add(res)
            bar.advance(len(res.pairs))
        timings["pipeline_s"] += time.perf_counter() - t_proc
        if failures.stop_early():
            log.error(event("build_stopping", failed=failures.failed, tried=failures.tried,
                            selected=failures.selected, reason=failures.reason(failures.failed)))
            break
        t_wait = time.perf_counter()
    return pending


def _persist(run: RunDir, cache: CallCache, res: VideoResult) -> int:
    """Part file first, then the done mark: a crash in between only redoes cached work."""
    uid = res.video.video_uid
    if res.status != "done":
        log.warning(event("video_pending", seq=res.seq, video=uid, reasons=dict(res.no_pair_reasons),
                          note="model calls failed; the next run retries them"))
        return 1
    shards.write_video_part(run.path, res.seq, res.pairs)
    failpoint("part_written")
    cache.mark_video(res.seq, uid, "done", res.summary(), [q.model_dump(mode="json") for q in res.quarantine])
    for q in res.quarantine:
        log.warning(event("quarantined", seq=res.seq, video=uid, stage=q.stage, attempts=q.attempts, reason=q.reason))
    log.info(event("video_done", seq=res.seq, video=uid, questions=res.questions, pairs=len(res.pairs),
                   quarantined=len(res.quarantine), filtered=dict(res.filtered), no_pair=dict(res.no_pair_reasons)))
    return 0


def finalize_run(run: RunDir, cfg: BuildConfig, info: ModelInfo, prompts: PromptSet, opts: BuildOptions,
                 cache: CallCache, stage_counts: dict[str, StageCounts],
                 previous: PreviousContext | None = None) -> BuildInfo:
    """Parts -> shards (kept pairs only, when the run is a whole build); side records and counts from the
    persisted state only (`stage_counts` sums every process that worked on the run, resumes included)."""
    sample = run.read_videos()
    selection = None
    if opts.num_shards == 1:
        selection = select_pairs(outcomes([run.path], sample, opts.limit_videos), quota_targets(cfg))
    names = shards.finalize(run.path, cfg.output.pairs_per_shard, keep=selection.keep if selection else None)
    finished = cache.finished_videos()
    videos = {v.video_uid: v for v in sample}
    counts = BuildCounts(sources=selection.fills if selection else {})
    counts.videos_sampled = len(select_videos(list(videos.values()), opts.limit_videos, opts.num_shards,
                                              opts.shard_index))
    skips: list[VideoSkip] = []
    for _seq, (uid, status, summary) in sorted(finished.items()):
        if status == "skipped":
            counts.videos_skipped += 1
            reason = summary.get("skip_reason", "decode_error")
            counts.skip_reasons[reason] = counts.skip_reasons.get(reason, 0) + 1
            v = videos.get(uid)
            skips.append(VideoSkip(video_uid=uid, source=v.source if v else "", video_path=v.video_path if v else "",
                                   reason=reason, message=summary.get("message", "")))
            continue
        counts.videos_done += 1
        counts.questions += summary.get("questions", 0)
        for k, n in summary.get("no_pair_reasons", {}).items():
            counts.no_pair_reasons[k] = counts.no_pair_reasons.get(k, 0) + n
        for k, n in summary.get("filtered", {}).items():
            counts.filtered[k] = counts.filtered.get(k, 0) + n
    pending = counts.videos_sampled - counts.videos_done - counts.videos_skipped
    if pending:
        counts.skip_reasons["pending_call_error"] = pending
    add_pair_counts(counts, run.read_pairs_table())
    _backfill_video_meta(run, finished)
    counts.stages = {k: v for k, v in sorted(stage_counts.items())}
    run.write_quarantine(QuarantineRecord.model_validate(r) for r in cache.quarantined())
    run.write_skipped(skips)
    # build.json is published with the data: a local model is named as in the rows, not by this machine's
    # absolute path (its revision, a weight hash, is what identifies it).
    shown = display_model_name(info.name_or_path)
    config = cfg.model_dump(mode="json")
    config["model"]["name_or_path"] = display_model_name(cfg.model.name_or_path)
    return BuildInfo(
        name=cfg.name, iteration=opts.iteration, builder_version=BUILDER_VERSION, videosavi_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), seed=cfg.seed,
        num_frames=cfg.frames.num_frames, config=config, config_hash=cfg.data_hash(),
        model=info.model_copy(update={"name_or_path": shown}), prompt_version=prompts.version,
        prompts=prompts.hashes, counts=counts, shards=names,
        shard_index=opts.shard_index if opts.num_shards > 1 else None,
        num_shards=opts.num_shards if opts.num_shards > 1 else None, limit_videos=opts.limit_videos,
        retrospective=_retrospective_info(previous, finished) if cfg.retrospective else None,
        allow_shortfall=opts.allow_shortfall,
    )


def _retrospective_info(previous: PreviousContext | None,
                        finished: dict[int, tuple[str, str, dict]]) -> RetrospectiveInfo:
    described = [summary["described"] for _uid, status, summary in finished.values()
                 if status == "done" and "described" in summary]
    return RetrospectiveInfo(
        previous=previous.label if previous is not None else None,
        previous_fingerprint=previous.fingerprint if previous is not None else None,
        previous_descriptions=len(previous.descriptions) if previous is not None else 0,
        videos_described=len(described), videos_with_previous=sum(1 for d in described if d["revised_previous"]),
    )


def _backfill_video_meta(run: RunDir, finished: dict[int, tuple[str, str, dict]]) -> None:
    """Write what decoding learnt of each finished video (duration, fps, frame count) into
    `videos.parquet`; which videos are sampled, and in what order, stays as it was."""
    meta = {uid: summary["video"] for uid, status, summary in finished.values() if summary.get("video")}
    if not meta:
        return
    videos = run.read_videos()
    filled = [v.model_copy(update=meta[v.video_uid]) if v.video_uid in meta else v for v in videos]
    if filled != videos:
        run.write_videos(filled, run.read_sample_key())


class _Progress:
    """The bar over videos, showing pairs, pairs/s and ETA (drawn while the progress switch is on)."""

    def __init__(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        self.total, self.done, self.pairs = total, done, 0
        self._start = time.perf_counter()
        self._bar = progress_bar(
            TextColumn("[bold]building[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("videos"),
            TextColumn("{task.fields[pairs]} pairs, {task.fields[rate]} pairs/s"), TimeRemainingColumn(),
        )
        self._task = self._bar.add_task("build", total=total, completed=done, pairs=0, rate="-")

    def __enter__(self) -> _Progress:
        self._bar.start()
        return self

    def add_total(self, videos: int) -> None:
        """Reserve videos joined the build."""
        self.total += videos
        self._bar.update(self._task, total=self.total)

    def advance(self, pairs: int) -> None:
        self.pairs += pairs
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self._bar.update(self._task, advance=1, pairs=self.pairs, rate=f"{self.pairs / elapsed:.2f}")

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

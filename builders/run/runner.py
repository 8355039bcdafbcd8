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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videosavi._faults import failpoint
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
from videosavi.run_dir import RunDir
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
    from videosavi.curation import CurationConfig

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """One build's run: which config (a validated `BuildConfig`, or a YAML path or bundled name with
    `overrides`), which iteration, where, and how much of the sample. The CLI's carrier; the Python
    entry point is `videosavi.run_build(BuildConfig, ...)`."""

    iteration: int = 1
    config: BuildConfig | str | Path | None = None
    data_root: str | Path | None = None
    out: str | Path | None = None
    model: str | None = None
    limit_videos: int | None = None
    num_shards: int = 1
    shard_index: int = 0
    force: bool = False
    window: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    # retrospective builds: the previous iteration's run directory, or the label of descriptions a caller
    # read from a published revision (`previous_descriptions`: video_uid -> text); builders/run/retrospective.py
    previous: str | None = None
    previous_descriptions: dict[str, str] | None = None
    previous_origin: dict[str, Any] | None = None  # the name and iteration the published revision's build.json gives
    # build with a random-weight tiny model although neither the config nor --model names one
    allow_random_weights: bool = False
    # keep a whole build whose reserve ran out before every quota was met (else: ShortfallError, exit 2);
    # recorded in build.json (`allow_shortfall`) so publishing knows the shortfall was accepted
    allow_shortfall: bool = False

    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        suffix = f"-shard{self.shard_index}of{self.num_shards}" if self.num_shards > 1 else ""
        return Path("runs") / f"iter{self.iteration}{suffix}"


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
            f"{run.path} was built with a different setup ({details}). Use another --out, or --force to "
            "discard its results and start over."
        )
    cache.set_meta("spec", canonical_json(spec))


BUILD_COMMAND = "savi-build"
# What a build (its shards, merges and Ray driver included) writes at a run directory's top level.
RUN_DIR_ENTRIES = ("build.json*", "videos.*", "data", "parts", "shards", "cache.sqlite*", "quarantine.jsonl*",
                   "skipped.jsonl*", "prompts", "build.log*")


def guard_run_dir(path: Path, cfg: BuildConfig, data_root: Path, force: bool) -> None:
    """The run directory must stay apart from the videos it reads (a source root, the data root itself),
    and `--force` discards only a run directory a build wrote (videosavi/out_guard.py)."""
    roots = {f"root of source {name}": data_root / src.root for name, src in cfg.sources.items()}
    check_apart(path, roots, containers={"data root": data_root})
    check_folder(path, BUILD_COMMAND, owned=RUN_DIR_ENTRIES, replacing=force, flag="--force", legacy="cache.sqlite")


def _wipe(run: RunDir) -> None:
    import shutil

    for p in [run.path / shards.PARTS_DIR, run.data_dir]:
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
                "or --force to resample"
            )
        videos = run.read_videos()
        log.info(event("sample_reused", videos=len(videos), available=sum(v.available for v in videos)))
        return videos
    videos = list(sample_videos(cfg, data_root).videos)
    run.write_videos(videos, key)
    log.info(event("sampled", videos=len(videos), available=sum(v.available for v in videos),
                   by_source=dict(Counter(v.source for v in videos if v.available))))
    return videos



def run_build(opts: BuildOptions) -> BuildResult:
    """Build (or resume) one iteration into `opts.out`, then finalise shards and build.json.

    A full disk surfaces as `DiskFullError` (one actionable line in the CLI): every write is atomic,
    so freeing space and re-running the same command resumes without loss.
    """
    try:
        return _run_build(opts)
    except (OSError, sqlite3.Error) as exc:
        full = disk_full_error(exc, opts.run_dir())
        if full is None:
            raise
        raise full from exc


def _run_build(opts: BuildOptions) -> BuildResult:
    t_start = time.perf_counter()
    cfg = resolve_config(opts)
    curation = cfg.curation
    data_root = resolve_data_root(opts.data_root)
    previous = resolve_previous(retrospective=cfg.retrospective, iteration=opts.iteration, previous=opts.previous,
                                descriptions=opts.previous_descriptions, name=cfg.name, origin=opts.previous_origin)
    run = RunDir(opts.run_dir())
    guard_run_dir(run.path, cfg, data_root, opts.force)
    # The lock comes before anything touches the directory: `--force` must never wipe a run that
    # another live build is writing (it is refused instead, naming that build).
    with exclusive(run.path, "savi-build"):
        claim_folder(run.path, BUILD_COMMAND, RUN_DIR_ENTRIES)
        if opts.force:
            _wipe(run)
        with run_log(run.path):
            return _build_locked(opts, cfg, curation, data_root, run, previous, t_start)


def _build_locked(opts: BuildOptions, cfg: BuildConfig, curation: CurationConfig, data_root: Path, run: RunDir,
                  previous: PreviousContext | None, t_start: float) -> BuildResult:
    from videosavi.builders.decode.pool import FrameDecoderPool
    from videosavi.builders.decode.source_decode import decode_sampled_video
    from videosavi.builders.generate.models.loader import load_backend

    timings: defaultdict[str, float] = defaultdict(float)
    prompts = load_prompts(cfg)

    if not progress_bars_enabled() and cfg.model.backend in ("tiny", "transformers"):  # no weight-loading bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    log.info(event("build_start", run=str(run.path), iteration=opts.iteration, config=cfg.name, force=opts.force,
                   shard=f"{opts.shard_index}/{opts.num_shards}", limit_videos=opts.limit_videos,
                   builder=BUILDER_VERSION, videosavi=__version__, pid=os.getpid()))
    t0 = time.perf_counter()
    backend = load_backend(cfg.model)
    others: dict[str, ModelBackend] = {}  # stage -> another model that answers it (an external critic)
    try:
        for stage in stage_classes(cfg):
            other_cfg = stage.model(cfg)
            if other_cfg is not None:
                others[stage.name] = load_backend(other_cfg)
    except BaseException:
        for other in [backend, *others.values()]:
            other.close()
        raise
    timings["model_load_s"] += time.perf_counter() - t0
    info = backend.info
    log.info(event("model_loaded", model=info.name_or_path, revision=info.revision, backend=cfg.model.backend,
                   seconds=round(timings["model_load_s"], 1)))
    for other in others.values():
        log.info(event("critic_loaded", model=other.info.name_or_path, revision=other.info.revision,
                       backend=other.info.backend))
    cache = CallCache(run.cache_db)
    try:
        _check_spec(cache, _spec(cfg, info, prompts, opts, data_root, previous), run, opts.force)
        t0 = time.perf_counter()
        sample_videos_list = load_or_sample(run, cfg, data_root)
        timings["sample_s"] += time.perf_counter() - t0
        run.write_prompts(prompts.templates)

        runner = StageRunner(backend, cache, CallContext(
            model=info.name_or_path, revision=info.revision, prompt_hashes=prompts.hashes, base_seed=cfg.seed,
            iteration=opts.iteration, max_attempts=cfg.stages.max_attempts), batch_size=cfg.model.batch_size,
            stage_models={name: StageModel(other, other.info.name_or_path, other.info.revision)
                          for name, other in others.items()})
        pipeline = VideoPipeline(runner, PipelineContext(
            cfg=cfg, curation=curation, prompts=prompts, iteration=opts.iteration,
            model_name=display_model_name(info.name_or_path), model_revision=info.revision,
            builder_version=BUILDER_VERSION,
            generation_json=generation_json(cfg, {name: other.info for name, other in others.items()}),
            previous_descriptions=previous.descriptions if previous is not None else {}))

        window = opts.window or cfg.model.batch_size
        selected = select_videos(sample_videos_list, opts.limit_videos, opts.num_shards, opts.shard_index)
        few = matched_share_warning(previous, (v.video_uid for _, v in selected)) if previous is not None else None
        if few:
            log.warning(few)
        finished = cache.finished_videos()
        done_before = sum(1 for seq, _ in selected if seq in finished and shards.has_part(run.path, seq))
        log.info(event("videos", selected=len(selected), done_before=done_before, todo=len(selected) - done_before,
                       window=window))
        failures = CallFailures(cfg.stages.max_failed_share, len(selected))
        with _Progress(len(selected), done_before) as bar, FrameDecoderPool(
            workers=cfg.frames.workers, timeout_s=cfg.frames.timeout_s,
            max_tasks_per_worker=cfg.frames.max_tasks_per_worker, task_fn=decode_sampled_video,
        ) as pool:
            while True:  # one round per reserve top-up; the first round is the sample as drawn
                finished = cache.finished_videos()
                todo = [(seq, v) for seq, v in selected if seq not in finished or not shards.has_part(run.path, seq)]
                pending = _process(todo, run, cfg, data_root, cache, pipeline, pool, bar, window, timings, failures)
                more = _top_up(run, cfg, data_root, sample_videos_list, opts) if not pending else []
                if not any(v.available for v in more):
                    break
                log.info(event("reserve_top_up", videos=sum(v.available for v in more),
                               by_source=dict(Counter(v.source for v in more if v.available))))
                sample_videos_list = [*sample_videos_list, *more]
                selected = select_videos(sample_videos_list, opts.limit_videos, opts.num_shards, opts.shard_index)
                failures.selected = len(selected)
                bar.add_total(sum(v.available for v in more))
        timings["model_s"] = runner.model_seconds

        t0 = time.perf_counter()
        runner.save_counts()
        totals = {stage: StageCounts.model_validate(c) for stage, c in cache.stage_totals().items()}
        info_out = finalize_run(run, cfg, info, prompts, opts, cache, totals, previous)
        timings["finalize_s"] += time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        info_out.timings = {k: round(v, 3) for k, v in timings.items()}
        c = info_out.counts
        info_out.stopped = failures.verdict(c.skip_reasons.get("pending_call_error", 0), c.videos_done)
        info_out = run.write_final_build_info(info_out)
        stats = getattr(backend, "stats", None)
        model_stats = stats.as_dict() if stats is not None else {}
        if model_stats:
            log.info(event("model_work", **model_stats))
        log.info(event("build_done", pairs=c.pairs, videos_done=c.videos_done, videos_skipped=c.videos_skipped,
                       pending=pending, quarantined=sum(s.quarantined for s in c.stages.values()),
                       shards=len(info_out.shards), seconds=round(timings["total_s"], 1), stopped=info_out.stopped))
        if info_out.stopped:
            fix = "fix the model server" if cfg.model.backend == "openai" else "fix what made the model calls fail"
            raise BuildStoppedError(f"the build did not complete: {info_out.stopped}. Finished videos are kept in "
                                    f"{run.path}: {fix} and run the same command to resume", run_dir=run.path)
        check_shortfall(info_out, whole=opts.num_shards == 1 and opts.limit_videos is None and not pending)
        return BuildResult(run.path, info_out, pending, model_stats)
    finally:
        cache.close()
        for other in [backend, *others.values()]:
            other.close()


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


def _top_up(run: RunDir, cfg: BuildConfig, data_root: Path, videos: list[VideoRef],
            opts: BuildOptions) -> list[VideoRef]:
    """Append reserve videos for every source short of its pairs; none while the build is a preview
    (`--limit-videos`) or one shard of several (merging decides for all shards at once)."""
    if opts.limit_videos is not None or opts.num_shards > 1:
        return []
    request = reserve_request(outcomes([run.path], videos), quota_targets(cfg))
    if not request:
        return []
    return extend_runs(cfg, data_root, videos, request, [run], run.read_sample_key())


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

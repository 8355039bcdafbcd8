"""Run a build's shards as Ray tasks, then merge them into exactly the layout of a local run.

The driver samples once (or reads the run's persisted sample) and hands every shard the same
`videos.parquet`, so files are hashed once and every shard sees the same global sequence numbers.
Each task builds one shard (`--num-shards S --shard-index I`) into `OUT/shards/shard-I` with its own
SQLite cache, so a lost worker's shard is simply retried (Ray `max_retries`) and resumes from its
cache; parts carry global sequence numbers, so the merge equals an unsharded build row for row.

One model replica per task: a whole GPU each when the cluster has GPUs and the backend runs the model
in-process, else one CPU. The shard count is fixed on the first run (`OUT/shards/plan.json`) so a
resume on a cluster of another size reuses the shards' caches instead of refusing them. Paths are
made absolute before they travel: on a multi-node cluster OUT, the data root and local models must
sit on a file system every node mounts at the same path.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.builders.run.runner import BuildOptions, BuildResult
from videosavi.config import BuildConfig
from videosavi.errors import ConfigError, ExecutorError, RunDirMismatchError, VideosaviError
from videosavi.locking import exclusive
from videosavi.logs import event, run_log
from videosavi.progress import disable_progress_bars, progress_bar

log = logging.getLogger(__name__)

SHARDS_DIR = "shards"
PLAN_FILE = "plan.json"
FORWARDED_ENV = (
    "VIDEOSAVI_CACHE", "VIDEOSAVI_DATA_ROOT", "VIDEOSAVI_STORE", "HF_HOME", "HF_HUB_OFFLINE", "HF_ENDPOINT",
    "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "VIDEOSAVI_FAULT", "VIDEOSAVI_FAULT_ONCE",
)


def shard_dir(out: Path, index: int) -> Path:
    return Path(out) / SHARDS_DIR / f"shard-{index}"


def plan_shards(requested: int | None, saved: int | None, resources: Mapping[str, float], videos: int,
                uses_gpu: bool) -> int:
    """How many shards to run: as asked, else as the first run decided, else one per GPU (or CPU).

    A shard per worker slot keeps every replica busy while loading each model only once; more shards
    than videos would only load models for nothing.
    """
    if requested is not None and saved is not None and requested != saved:
        raise RunDirMismatchError(
            f"this run directory was split into {saved} shards, not {requested}; drop --num-shards to resume "
            "it, or use --overwrite to start over"
        )
    if requested is not None:
        return requested
    if saved is not None:
        return saved
    slots = int(resources.get("GPU", 0)) if uses_gpu else int(resources.get("CPU", 1))
    return max(1, min(slots, videos))


def _build_shard(opts_dict: dict[str, Any]) -> dict[str, Any]:
    """Ray task body (module-level so workers can import it). A shard draws no bar: the driver's bar
    counts shards."""
    from videosavi.builders.run.runner import BuildOptions, run_build

    disable_progress_bars()
    result = run_build(BuildOptions(**opts_dict))
    return {"run_dir": str(result.run_dir), "pending": result.pending_videos, "pairs": result.info.counts.pairs}


@dataclass
class RayExecutor:
    """The `ray` executor (builders/run/executors/base.py): `address` of the cluster (None: start a local
    Ray), `num_shards` (None: as planned), `max_retries` per shard task."""

    address: str | None = None
    num_shards: int | None = None
    max_retries: int = 3
    name: str = "ray"

    def run(self, opts: BuildOptions) -> BuildResult:
        return run_build_ray(opts, address=self.address, num_shards=self.num_shards, max_retries=self.max_retries)


def run_build_ray(opts: BuildOptions, address: str | None = None, num_shards: int | None = None,
                  max_retries: int = 3) -> BuildResult:
    """Build `opts` as Ray tasks (connecting to `address`, or starting a local Ray) and merge the shards.

    `opts.num_shards > 1` (or `num_shards`) fixes the shard count; `opts.shard_index` is ignored.
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the ray executor needs Ray: pip install 'videosavi[ray]'") from exc

    from videosavi.builders.run.merge import merge_shards
    from videosavi.builders.run.reserve import reserve_request
    from videosavi.builders.run.runner import (
        BUILD_COMMAND,
        RUN_DIR_ENTRIES,
        guard_run_dir,
        load_or_sample,
        resolve_config,
        select_videos,
    )
    from videosavi.builders.run.top_up import extend_runs, outcomes, quota_targets
    from videosavi.builders.sources.sampler import sample_key
    from videosavi.config import resolve_data_root
    from videosavi.out_guard import claim_folder
    from videosavi.run_dir import RunDir, atomic_write_text

    t_start = time.perf_counter()
    whole = dataclasses.replace(opts, num_shards=1, shard_index=0)
    out = Path(whole.run_dir()).absolute()
    cfg = resolve_config(opts)
    data_root = Path(resolve_data_root(opts.data_root)).absolute()
    # The driver holds OUT for the whole build (each shard task locks its own OUT/shards/shard-I), and
    # takes it before `--overwrite` removes anything.
    guard_run_dir(out, cfg, data_root, opts.force)
    with exclusive(out, "savi-build --executor ray"), run_log(out):
        claim_folder(out, BUILD_COMMAND, RUN_DIR_ENTRIES)
        main_run = RunDir(out)
        if opts.force:
            import shutil

            shutil.rmtree(out / SHARDS_DIR, ignore_errors=True)
            main_run.videos.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        videos = load_or_sample(main_run, cfg, data_root)
        n_videos = len(select_videos(videos, opts.limit_videos, 1, 0))
        requested = num_shards or (opts.num_shards if opts.num_shards > 1 else None)
        device = getattr(cfg.model, "device", "cpu")
        uses_gpu_backend = cfg.model.in_process and (device == "auto" or device.startswith("cuda"))

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        try:
            resources = ray.cluster_resources()
            uses_gpu = uses_gpu_backend and int(resources.get("GPU", 0)) > 0
            n = plan_shards(requested, _read_plan(out), resources, n_videos, uses_gpu)
            _write_plan(out, n)
            log.info(event("ray_build_start", run=str(out), shards=n, videos=n_videos, gpu=uses_gpu,
                           address=address or "local", pid=os.getpid()))
            task = ray.remote(_build_shard)
            task_options = {
                "num_cpus": 1, "num_gpus": 1 if uses_gpu else 0, "max_retries": max_retries,
                "retry_exceptions": False,
                "runtime_env": {"env_vars": forwarded_env(getattr(cfg.model, "api_key_env", None))},
            }
            shard_runs = [RunDir(shard_dir(out, i)) for i in range(n)]
            for shard in shard_runs:
                if not shard.videos.exists():
                    shard.write_videos(videos, sample_key(cfg))
            while True:  # one round per reserve top-up, decided here for all shards at once
                refs: dict[Any, int] = {}
                for i, shard in enumerate(shard_runs):
                    shard_opts = dataclasses.replace(
                        opts, out=str(shard.path), num_shards=n, shard_index=i, force=False,
                        data_root=str(data_root), config=_portable_config(opts.config),
                        model=_portable_model(opts.model), previous=_portable_previous(opts.previous),
                    )
                    ref = task.options(name=f"videosavi-shard-{i}", **task_options).remote(
                        dataclasses.asdict(shard_opts))
                    refs[ref] = i
                results, failures = _collect(ray, refs)
                if failures or any(r["pending"] for r in results.values()) or opts.limit_videos is not None:
                    break
                request = reserve_request(outcomes([r.path for r in shard_runs], videos), quota_targets(cfg))
                more = extend_runs(cfg, data_root, videos, request, [main_run, *shard_runs], sample_key(cfg)) \
                    if request else []
                if not any(v.available for v in more):
                    break
                videos = [*videos, *more]
        finally:
            if started_here:
                ray.shutdown()
        for i, msg in sorted(failures.items()):
            log.warning(event("shard_failed", shard=i, error=msg))
        if failures:
            lines = "; ".join(f"shard {i}: {msg}" for i, msg in sorted(failures.items()))
            raise ExecutorError(
                f"{len(failures)} of {n} shard(s) did not finish ({lines}). Finished shards and videos are kept "
                f"under {out / SHARDS_DIR}; run the same command again to resume."
            )
        prior = main_run.build_json.read_text(encoding="utf-8") if main_run.build_json.is_file() else None
        info = merge_shards(out, [shard_dir(out, i) for i in range(n)], top_up=False,
                            allow_shortfall=opts.allow_shortfall)
        info.timings = {**info.timings, "total_s": round(time.perf_counter() - t_start, 3)}
        if prior is not None:  # a finished run built again keeps its build.json byte for byte
            atomic_write_text(main_run.build_json, prior)
        info = main_run.write_final_build_info(info)
        log.info(event("build_done", pairs=info.counts.pairs, videos_done=info.counts.videos_done,
                       videos_skipped=info.counts.videos_skipped, shards=n, seconds=info.timings["total_s"]))
        return BuildResult(out, info, sum(r["pending"] for r in results.values()))


def _collect(ray: Any, refs: dict[Any, int]) -> tuple[dict[int, dict], dict[int, str]]:
    """Wait for every shard (whatever the others do), with a progress bar over shards."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    results: dict[int, dict] = {}
    failures: dict[int, str] = {}
    pending = list(refs)
    with progress_bar(TextColumn("[bold]ray shards[/]"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[pairs]} pairs"), TimeElapsedColumn()) as bar:
        task = bar.add_task("shards", total=len(refs), pairs=0)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    results[i] = ray.get(ref)
                except Exception as exc:  # one shard's failure must not hide the others' results
                    failures[i] = failure_message(exc)
                bar.update(task, advance=1, pairs=sum(r["pairs"] for r in results.values()))
    return results, failures


def failure_message(exc: BaseException) -> str:
    """One line on why a shard failed: our own error's message, or what happened to its worker."""
    from ray.exceptions import RayTaskError

    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(cause, VideosaviError):
        return str(cause)
    if isinstance(exc, RayTaskError):
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}".rstrip(": ")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__} (its worker was lost and the retries ran out): {first}"[:500]


def forwarded_env(api_key_env: str | None = None) -> dict[str, str]:
    """Environment the shard tasks need on any node (a remote worker does not inherit ours)."""
    keys = (*FORWARDED_ENV, *([api_key_env] if api_key_env else []))
    return {k: os.environ[k] for k in keys if k in os.environ}


def _read_plan(out: Path) -> int | None:
    path = out / SHARDS_DIR / PLAN_FILE
    if not path.exists():
        return None
    return int(json.loads(path.read_text(encoding="utf-8"))["num_shards"])


def _write_plan(out: Path, n: int) -> None:
    from videosavi.run_dir import atomic_write_text

    atomic_write_text(out / SHARDS_DIR / PLAN_FILE, json.dumps({"num_shards": n}) + "\n")


def _portable_config(config: BuildConfig | str | Path | None) -> BuildConfig | str | None:
    """A config file as an absolute path (workers may start elsewhere); bundled names stay names, and a
    `BuildConfig` travels as it is."""
    if config is None or isinstance(config, BuildConfig):
        return config
    p = Path(config)
    return str(p.absolute()) if p.is_file() else str(config)


def _portable_model(model: str | None) -> str | None:
    if model and Path(model).exists():
        return str(Path(model).absolute())
    return model


def _portable_previous(previous: str | None) -> str | None:
    """A previous run directory, absolute like the other paths (a label of given descriptions as it is)."""
    return _portable_model(previous)

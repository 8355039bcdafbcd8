"""Run a build's shards as Ray tasks, then merge them into exactly the layout of a local run.

The driver samples once (or reads the run's persisted sample) and hands every shard the same
`videos.parquet`, so files are hashed once and every shard sees the same global sequence numbers.
Each task builds one shard (`--num-shards S --shard-index I`) into `OUT/shards/shard-I` with its own
SQLite cache, so a lost worker's shard is simply retried (Ray `max_retries`) and resumes from its
cache; parts carry global sequence numbers, so the merge equals an unsharded build row for row.

Planning, the reserve top-up between rounds and completion are the driver's (`runner.drive`), as for
every executor; this module launches the rounds.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosavi.builders.run.executors.base import BaseExecutor
from videosavi.builders.run.runner import SHARDS_DIR, BuildOptions, BuildResult, Plan, Work, select_videos
from videosavi.config import BuildConfig
from videosavi.errors import ConfigError, ExecutorError, RunDirMismatchError, VideosaviError
from videosavi.logs import event
from videosavi.progress import disable_progress_bars, progress_bar
from videosavi.run_dir import RunDir
from videosavi.schemas import BuildInfo, VideoRef

log = logging.getLogger(__name__)

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
class RayExecutor(BaseExecutor):
    """The `ray` executor (builders/run/executors/base.py): `address` of the cluster (None: start a local
    Ray), `num_shards` (None: as planned), `max_retries` per shard task."""

    address: str | None = None
    num_shards: int | None = None
    max_retries: int = 3
    name = "ray"
    holder = "savi-build --executor ray"
    _requested: int | None = field(default=None, init=False, repr=False)  # the shard count this run asks for

    def prepare(self, opts: BuildOptions) -> BuildOptions:
        """One whole build into OUT (absolute: shard tasks may start elsewhere); the shard count asked for
        (`opts.num_shards > 1`, or `num_shards`) is kept for `start`, and `opts.shard_index` is ignored."""
        self._requested = self.num_shards or (opts.num_shards if opts.num_shards > 1 else None)
        whole = dataclasses.replace(opts, num_shards=1, shard_index=0)
        return dataclasses.replace(whole, out=str(Path(whole.run_dir()).absolute()))

    def start(self, plan: Plan) -> Work:
        return RayWork(plan, self.address, self._requested, self.max_retries)


def run_build_ray(opts: BuildOptions, address: str | None = None, num_shards: int | None = None,
                  max_retries: int = 3) -> BuildResult:
    """Build `opts` as Ray tasks (connecting to `address`, or starting a local Ray) and merge the shards.

    `opts.num_shards > 1` (or `num_shards`) fixes the shard count; `opts.shard_index` is ignored.
    """
    return RayExecutor(address=address, num_shards=num_shards, max_retries=max_retries).run(opts)


class RayWork:
    """The build's shards as Ray tasks: each round runs every shard's share of the sample (an in-process
    build of OUT/shards/shard-I that resumes from its own cache); `finish` merges them into OUT."""

    def __init__(self, plan: Plan, address: str | None, requested: int | None, max_retries: int) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("the ray executor needs Ray: pip install 'videosavi[ray]'") from exc
        from videosavi.builders.sources.sampler import sample_key

        self.ray, self.plan = ray, plan
        self.model_stats: dict[str, Any] = {}
        cfg, out = plan.cfg, plan.run.path
        self.data_root = Path(plan.data_root).absolute()
        n_videos = len(select_videos(plan.videos, plan.opts.limit_videos, 1, 0))
        device = getattr(cfg.model, "device", "cpu")
        uses_gpu_backend = cfg.model.in_process and (device == "auto" or device.startswith("cuda"))
        self.started_here = not ray.is_initialized()
        if self.started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        try:
            resources = ray.cluster_resources()
            uses_gpu = uses_gpu_backend and int(resources.get("GPU", 0)) > 0
            self.n = plan_shards(requested, _read_plan(out), resources, n_videos, uses_gpu)
            _write_plan(out, self.n)
            log.info(event("ray_build_start", run=str(out), shards=self.n, videos=n_videos, gpu=uses_gpu,
                           address=address or "local", pid=os.getpid()))
            self.task = ray.remote(_build_shard)
            self.task_options = {
                "num_cpus": 1, "num_gpus": 1 if uses_gpu else 0, "max_retries": max_retries,
                "retry_exceptions": False,
                "runtime_env": {"env_vars": forwarded_env(getattr(cfg.model, "api_key_env", None))},
            }
            shard_runs = [RunDir(shard_dir(out, i)) for i in range(self.n)]
            for shard in shard_runs:
                if not shard.videos.exists():
                    shard.write_videos(plan.videos, sample_key(cfg))
            self.part_dirs = [r.path for r in shard_runs]
            self.runs = [plan.run, *shard_runs]
        except BaseException:
            self.close()
            raise

    def round(self, videos: list[VideoRef]) -> int:
        opts = self.plan.opts
        refs: dict[Any, int] = {}
        for i, shard in enumerate(self.part_dirs):
            shard_opts = dataclasses.replace(
                opts, out=str(shard), num_shards=self.n, shard_index=i, force=False, data_root=str(self.data_root),
                config=_portable_config(opts.config), model=_portable_model(opts.model),
                previous=_portable_previous(opts.previous),
            )
            ref = self.task.options(name=f"videosavi-shard-{i}", **self.task_options).remote(
                dataclasses.asdict(shard_opts))
            refs[ref] = i
        results, failures = _collect(self.ray, refs)
        for i, msg in sorted(failures.items()):
            log.warning(event("shard_failed", shard=i, error=msg))
        if failures:
            lines = "; ".join(f"shard {i}: {msg}" for i, msg in sorted(failures.items()))
            raise ExecutorError(
                f"{len(failures)} of {self.n} shard(s) did not finish ({lines}). Finished shards and videos are "
                f"kept under {self.plan.run.path / SHARDS_DIR}; run the same command again to resume."
            )
        return sum(r["pending"] for r in results.values())

    def finish(self) -> BuildInfo:
        from videosavi.builders.run.merge import merge_shards

        return merge_shards(self.plan.run.path, self.part_dirs, top_up=False,
                            allow_shortfall=self.plan.opts.allow_shortfall)

    def close(self) -> None:
        if self.started_here:
            self.started_here = False
            self.ray.shutdown()


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

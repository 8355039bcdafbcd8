"""`savi bench`: evaluate one model on benchmarks with LMMs-Eval, one task at a time, resumably.

Order is chosen so that bad input costs seconds: LMMs-Eval's venv is probed, every task name checked
against its task files, every task's data checked for reachability, the model resolved (config,
weights, wrapper) and the results file checked to belong to this model, all before the first LMMs-Eval
process starts. Then each task not yet in `OUT/<label>.json` runs in its own LMMs-Eval process, and its
score is added to the file as soon as it is read back, so a later failure (or Ctrl-C) loses nothing
finished and the same command resumes with the tasks left. A failed task leaves no score, only its log.

```
OUT/<label>.json                     BenchResults: the model and one score per task (schemas/bench.py)
OUT/lmms-eval/<label>/<task>/        LMMs-Eval's own output: results JSON, samples, lmms-eval.log, command.json
OUT/tasks/videosavi_tiny_mc/         the bundled tiny task, when asked for
```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from videosavi.errors import BenchError
from videosavi.logs import event
from videosavi.schemas.bench import BenchResults, BenchScore
from videosavi.version import __version__
from videosavi.workflows.bench.lmms_env import LmmsEval, find_lmms_eval
from videosavi.workflows.bench.lmms_run import OPENAI, TaskRun, run_task, task_folder
from videosavi.workflows.bench.mc_task import TINY_TASK, ensure_tiny_task
from videosavi.workflows.bench.model_ref import ModelRef, resolve_model
from videosavi.workflows.bench.paper import PAPER, expand_tasks
from videosavi.workflows.bench.results_file import check_same_model, load_results, results_path, save_results
from videosavi.workflows.bench.results_parse import score_from_results
from videosavi.workflows.bench.tasks import TaskIndex, data_problem

DEFAULT_FRAMES = 32  # the paper's setting


@dataclass
class BenchOptions:
    model: str
    tasks: list[str] = field(default_factory=lambda: [PAPER])
    out: Path = Path("runs/bench")
    iteration: int | None = None
    label: str | None = None
    include_paths: list[Path] = field(default_factory=list)
    lmms_eval: Path | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    lmms_model: str | None = None
    model_args: dict[str, str] = field(default_factory=dict)
    model_revision: str | None = None
    frames: int = DEFAULT_FRAMES
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = 1
    limit: int | None = None
    force: bool = False
    timeout_s: float | None = None


@dataclass
class BenchRun:
    results_file: Path
    results: BenchResults
    ran: list[str]
    already: list[str]


# (task, index of it, of how many, (done, total) of its samples or None)
ProgressFn = Callable[[str, int, int, "tuple[int, int] | None"], None]


def parse_model_args(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or "," in pair:
            raise BenchError(f"--model-arg {pair!r} must be KEY=VALUE (no commas)")
        out[key.strip()] = value.strip()
    return out


def _device(device: str, lmms: LmmsEval) -> str:
    if device == "cuda" and not lmms.cuda:
        raise BenchError("--device cuda asked, but torch in the LMMs-Eval venv sees no GPU")
    return ("cuda" if lmms.cuda else "cpu") if device == "auto" else device


@dataclass(frozen=True)
class Prepared:
    lmms: LmmsEval
    tasks: list[str]
    include: dict[str, Path]  # task -> the --include-path folder that defines it (LMMs-Eval takes one per run)
    ref: ModelRef
    device: str


def prepare(opts: BenchOptions) -> Prepared:
    """Everything checked before LMMs-Eval starts."""
    if opts.batch_size < 1:
        raise BenchError(f"--batch-size must be >= 1, got {opts.batch_size}")
    tasks = expand_tasks(opts.tasks)
    if not tasks:
        raise BenchError("no task given: --tasks paper, or LMMs-Eval task names")
    include = [Path(p) for p in opts.include_paths]
    for folder in include:
        if not folder.is_dir():
            raise BenchError(f"--include-path {folder} is not a folder")
    if TINY_TASK in tasks:
        include.append(ensure_tiny_task(Path(opts.out) / "tasks"))
    lmms = find_lmms_eval(opts.lmms_eval)
    index = TaskIndex.load(lmms.tasks_dir, lmms.version, include)
    index.check(tasks)
    for task in tasks:
        for leaf in index.leaves(task):
            problem = data_problem(index.config(leaf.name), Path(leaf.yaml_path))
            if problem:
                where = task if leaf.name == task else f"{task} ({leaf.name})"
                raise BenchError(f"task {where} cannot run here: {problem}")
    device = _device(opts.device, lmms)
    ref = resolve_model(opts.model, iteration=opts.iteration, label=opts.label, base_url=opts.base_url,
                        wrapper=opts.lmms_model, frames=opts.frames, device=device,
                        model_revision=opts.model_revision)
    roots = {t: root for t in tasks for root in include if _under(Path(index.entries[t].yaml_path), root)}
    return Prepared(lmms, tasks, roots, ref, device)


def _under(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def run_bench(opts: BenchOptions, on_progress: ProgressFn | None = None) -> BenchRun:
    """Evaluate `opts.model` on every task not yet in its results file; see the module docstring."""
    import logging

    log = logging.getLogger(__name__)
    prep = prepare(opts)
    lmms, tasks, ref, device = prep.lmms, prep.tasks, prep.ref, prep.device
    out = Path(opts.out)
    path = results_path(out, ref.label)
    results = load_results(path)
    if results is not None:
        check_same_model(path, results.model, ref.record())
        results.model = ref.record()  # same weights: the newest description (e.g. its card) wins
    else:
        results = BenchResults(label=ref.label, model=ref.record(), videosavi_version=__version__)
    todo = [t for t in tasks if opts.force or t not in results.scores]
    already = [t for t in tasks if t not in todo]
    log.info(event("bench_start", model=ref.given, label=ref.label, revision=ref.revision, wrapper=ref.wrapper,
                   tasks=tasks, todo=todo, lmms_eval=lmms.version, device=device))
    for i, task in enumerate(todo):
        def progress(done: tuple[int, int] | None, task: str = task, i: int = i) -> None:
            if on_progress is not None:
                on_progress(task, i, len(todo), done)

        progress(None)
        root = prep.include.get(task)
        run = run_task(lmms, ref, task, task_folder(out, ref.label, task), include_paths=[root] if root else [],
                       extra_args=opts.model_args, batch_size=opts.batch_size, device=device, limit=opts.limit,
                       api_key_env=opts.api_key_env if ref.wrapper == OPENAI else None, on_progress=progress,
                       timeout_s=opts.timeout_s)
        score = _score(run, out, lmms, opts.limit)
        results.scores[task] = score
        save_results(path, results)
        log.info(event("bench_task", label=ref.label, task=task, metric=score.metric, value=score.value,
                       n=score.n, seconds=score.seconds))
    return BenchRun(results_file=path, results=results, ran=todo, already=already)


def _score(run: TaskRun, out: Path, lmms: LmmsEval, limit: int | None) -> BenchScore:
    import json

    raw = json.loads(run.results_file.read_text(encoding="utf-8"))
    samples = sorted(run.results_file.parent.glob(f"*_samples_{run.task}.jsonl"))
    return score_from_results(
        raw, run.task, lmms_eval_version=lmms.version, seconds=run.seconds,
        raw_results=run.results_file.relative_to(out).as_posix(),
        raw_samples=samples[-1].relative_to(out).as_posix() if samples else None, limit=limit)


"""Self-training iterations: build (with the current model) -> publish (tag iterN) -> train -> repeat.

The orchestration takes its three steps as callables, so it is the same whether they call the
Python APIs (the defaults below), a cluster job or a test double. Each finished iteration leaves
`train.json` in its model folder; a re-run skips those iterations and goes on with their merged
model, so an interrupted loop resumes instead of starting over: the build resumes on its own (a finished
one leaves its files byte for byte as they were), publishing the same files again is a no-op, and
`publish_run` refuses a run that did not complete. Failpoints `loop_built`, `loop_published` and
`loop_trained` mark the step boundaries for the kill tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi._faults import failpoint
from videosavi.build_options import BuildOptions
from videosavi.config import BuildConfig, load_config
from videosavi.errors import ConfigError

# (iteration, model, run_dir) -> run_dir holding the finished build
BuildFn = Callable[[int, str, Path], Path]
# run_dir -> (tag, commit sha)
PublishFn = Callable[[Path], tuple[str, str]]
# (iteration, revision, model, output) -> folder of the merged model
TrainFn = Callable[[int, str, str, Path], Path]
# (iteration, model): evaluate a model as soon as it exists (0: the base model, N: the model trained on iterN)
EvaluateFn = Callable[[int, str], None]


@dataclass(frozen=True)
class LoopStep:
    iteration: int
    model: str  # the model that built this iteration's data
    run_dir: Path
    tag: str
    commit_sha: str
    trained_model: Path  # merged model: builds iteration + 1
    skipped: bool = False  # finished by an earlier run


def run_dir_of(workdir: Path, iteration: int) -> Path:
    return workdir / f"iter{iteration}"


def model_dir_of(workdir: Path, iteration: int) -> Path:
    return workdir / f"iter{iteration}-model"


def _finished(model_dir: Path) -> dict[str, Any] | None:
    record = model_dir / "train.json"
    merged = model_dir / "merged"
    if record.is_file() and merged.is_dir():
        return json.loads(record.read_text(encoding="utf-8"))
    return None


def run_loop(iterations: int, model: str, workdir: Path, *, build: BuildFn, publish: PublishFn, train: TrainFn,
             start: int = 1, on_step: Callable[[LoopStep], None] | None = None,
             evaluate: EvaluateFn | None = None) -> list[LoopStep]:
    """Iterations `start..iterations`; iteration N+1 is built by the model trained on iteration N.

    `evaluate` (e.g. benchmarks, `savi loop --bench`) sees the base model first (when starting at
    iteration 1) and each trained model as soon as it exists, finished by an earlier run or not (an
    evaluation that is already done is the evaluator's to skip)."""
    if iterations < 1 or not 1 <= start <= iterations:
        raise ConfigError(f"need 1 <= --start ({start}) <= --iterations ({iterations})")
    workdir = Path(workdir)
    current = model
    if start > 1:
        previous = model_dir_of(workdir, start - 1) / "merged"
        if not previous.is_dir():
            raise ConfigError(f"--start {start} needs the model of iteration {start - 1} at {previous}")
        current = str(previous)
    steps: list[LoopStep] = []
    if evaluate is not None and start == 1:
        evaluate(0, model)
    for i in range(start, iterations + 1):
        model_dir = model_dir_of(workdir, i)
        done = _finished(model_dir)
        if done is not None:
            ds = done.get("dataset", {})
            step = LoopStep(i, current, run_dir_of(workdir, i), ds.get("revision", ""), ds.get("sha", ""),
                            model_dir / "merged", skipped=True)
        else:
            run_dir = build(i, current, run_dir_of(workdir, i))
            failpoint("loop_built")
            tag, sha = publish(run_dir)
            failpoint("loop_published")
            trained = train(i, tag, current, model_dir)
            failpoint("loop_trained")
            step = LoopStep(i, current, run_dir, tag, sha, trained)
        steps.append(step)
        if evaluate is not None:
            evaluate(i, str(step.trained_model))
        if on_step is not None:
            on_step(step)
        current = str(step.trained_model)
    return steps


# --- the default steps: the project's own Python APIs ------------------------------------------------------


def default_build(template: BuildOptions | str | Path | None = None, data_root: str | Path | None = None,
                  **options: Any) -> BuildFn:
    """Each iteration built from `template` (the loop's build options: `savi loop`'s flags), or from a
    config and data root with other `BuildOptions` fields as keywords; the loop sets the iteration, the
    model and the run directory. A retrospective config (ISR-DPO) builds iteration N > 1 with iteration
    N-1's run directory as `previous`: its rows hold the descriptions iteration N revises."""
    if not isinstance(template, BuildOptions):
        template = BuildOptions(config=template, data_root=data_root, **options)
    base = template
    config = base.config
    retrospective = (config if isinstance(config, BuildConfig) else load_config(config)).retrospective

    def build(iteration: int, model: str, out: Path) -> Path:
        from videosavi.builders.run.runner import run_build

        previous = str(run_dir_of(Path(out).parent, iteration - 1)) if retrospective and iteration > 1 else None
        result = run_build(base.replace(iteration=iteration, out=out, model=model, previous=previous))
        return Path(result.run_dir)

    return build


def default_publish(repo: str, *, hub: bool = False, store: str | Path | None = None) -> PublishFn:
    def publish(run_dir: Path) -> tuple[str, str]:
        from videosavi.hub.publish import publish_run

        res = publish_run(run_dir, repo, backend="hub" if hub else "store", store=store)
        return res.tag, res.commit_sha

    return publish


def default_train(template: Any) -> TrainFn:
    """Train with `template` (a `TrainArgs`) and the iteration's tag, model and output folder."""
    def train(iteration: int, revision: str, model: str, output: Path) -> Path:
        from videosavi.training.train import train_dpo

        args = dataclasses.replace(template, revision=revision, model=model, output=output, merge=True)
        result = train_dpo(args)
        assert result.merged_dir is not None
        return result.merged_dir

    return train

"""`savi train`: DPO + LoRA on a named revision; `savi loop`: build -> publish -> train, N iterations.

Both take every training option from `TrainingOptions` (videosavi/training_options.py), generated as
flags, over the build config's `training:` section when `--config` names one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from videosavi.build_options import BuildOptions
from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.dataclass_options import GivenOptions, with_dataclass_options
from videosavi.commands.options import (
    Config,
    DataRoot,
    Dataset,
    FirstModel,
    LoopDataset,
    LoopOut,
    ModelRevision,
    Progress,
    Revision,
    SourcesConfig,
    TrainModel,
    TrainOut,
    VideoRoots,
    announce_config,
    command,
    location_options,
)
from videosavi.hub_location import HubLocation
from videosavi.training_options import RRPO_DEFAULT_ALPHA, TrainingOptions

PANEL = "Training (also the config's training: section)"


def training_options(given: GivenOptions[TrainingOptions], config: str | None) -> TrainingOptions:
    """The flags the user gave over the config's `training:` section (or the defaults), checked before
    anything heavy is loaded: a bad objective or LoRA target must not wait for a build to finish."""
    from videosavi.config import load_config
    from videosavi.training.lora_targets import check_spec
    from videosavi.training.losses import check_loss

    base = load_config(config).training if config is not None else TrainingOptions()
    opts = given.over(base)
    alpha_given = "rrpo_alpha" in given.explicit or opts.rrpo_alpha != RRPO_DEFAULT_ALPHA
    check_loss(opts.loss, label_smoothing=opts.label_smoothing, alpha=opts.rrpo_alpha if alpha_given else None)
    check_spec(opts.lora_targets)
    return opts


@friendly_errors
@with_dataclass_options(TrainingOptions, command="train", param="training", panel=PANEL)
@location_options("read")
def train(
    dataset: Dataset,
    revision: Revision,
    model: TrainModel,
    out: TrainOut,
    video_root: VideoRoots = None,
    config: SourcesConfig = None,
    data_root: DataRoot = None,
    model_revision: ModelRevision = None,
    progress: Progress = True,
    *,
    training: GivenOptions[TrainingOptions],
    location: HubLocation,
) -> None:
    """DPO + LoRA on a published revision: writes OUT/adapter, OUT/merged (+ model card), train.json."""
    from videosavi.training.args import TrainArgs
    from videosavi.training.train import train_dpo
    from videosavi.training.video_roots import resolve_roots, symlink_sources
    from videosavi.training_options import given_options

    progress_switch(progress)
    opts = training_options(training, config)
    roots = resolve_roots(video_root or [], config, data_root)
    read_store, read_endpoint = location.read()
    args = TrainArgs(
        **given_options(opts), follow_symlinks=symlink_sources(config), dataset=dataset, revision=revision,
        model=model, output=out, video_roots=roots, store=read_store, endpoint=read_endpoint,
        model_revision=model_revision,
    )
    _print_result(train_dpo(args))


def _print_result(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trained {result.steps} steps on {result.dataset_sha[:12]}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    c = result.counts
    table.add_row("pairs", f"{c.kept_rows} used of {c.total_rows}" + (f" (skipped: {c.skipped_rows})" if c.skipped_rows
                                                                       else ""))
    table.add_row("LoRA", result.lora_targets)
    for name, value in result.final_metrics.items():
        table.add_row(name, f"{value:.4f}")
    table.add_row("adapter", str(result.adapter_dir))
    if result.merged_dir is not None:
        table.add_row("merged model", str(result.merged_dir))
    table.add_row("record", str(result.train_json))
    Console().print(table)


@friendly_errors
@with_dataclass_options(TrainingOptions, command="loop", param="training", panel=PANEL)
@with_dataclass_options(BuildOptions, command="loop", param="building", panel="Building")
@location_options("build")
def loop(
    model: FirstModel,
    dataset: LoopDataset,
    iterations: Annotated[int, typer.Option("--iterations", min=1, help="Self-training iterations (paper: 4).")] = 4,
    config: Config = None,
    data_root: DataRoot = None,
    out: LoopOut = Path("runs/loop"),
    start: Annotated[int, typer.Option(
        "--start", min=1, help="First iteration to run (earlier ones must be done).")] = 1,
    video_root: VideoRoots = None,
    bench: Annotated[Optional[list[str]], typer.Option(
        "--bench", metavar="TASK", help="Evaluate the base model and each trained model with LMMs-Eval as soon as it "
                                        "exists (savi bench --tasks: paper, short names or task names); results, "
                                        "table and plot in OUT/bench.")] = None,
    progress: Progress = True,
    *,
    training: GivenOptions[TrainingOptions],
    building: GivenOptions[BuildOptions],
    location: HubLocation,
) -> None:
    """Iterate: build with the current model -> publish iterN -> train -> build N+1 with the trained model."""
    from videosavi.training.args import TrainArgs
    from videosavi.training.video_roots import parse_video_roots, roots_from_config, symlink_sources
    from videosavi.training_options import given_options
    from videosavi.workflows.loop import default_build, default_publish, default_train, run_loop

    progress_switch(progress)
    config = announce_config(config)
    opts = training_options(training, config)
    read_store, read_endpoint = location.read()
    roots = parse_video_roots(video_root) if video_root else roots_from_config(config, data_root)
    template = TrainArgs(
        **given_options(opts), follow_symlinks=symlink_sources(config), dataset=dataset, revision="", model=model,
        output=out, video_roots=roots, store=read_store, endpoint=read_endpoint,
    )

    def report(step: Any) -> None:
        state = "already done" if step.skipped else f"published {step.tag} ({step.commit_sha[:12]})"
        typer.echo(f"iteration {step.iteration}: {state}; trained model -> {step.trained_model}")

    run_loop(iterations, model, out, start=start, on_step=report,
             build=default_build(building.over(BuildOptions(config=config, data_root=data_root))),
             publish=default_publish(dataset, hub=location.backend == "hub", store=location.store),
             train=default_train(template), evaluate=_bench_step(bench, model, out) if bench else None)


def _bench_step(tasks: list[str], model: str, out: Path) -> Any:
    """`savi loop --bench`: LMMs-Eval, the tasks and the base model are checked before the first build; each
    model is then evaluated (resumably: a finished model+task is not run again) and the report redone."""
    from videosavi.workflows.bench.report import write_bench_report
    from videosavi.workflows.bench.run import BenchOptions, prepare, run_bench

    folder = out / "bench"
    prepare(BenchOptions(model=model, tasks=tasks, out=folder, iteration=0))

    def evaluate(iteration: int, model_path: str) -> None:
        result = run_bench(BenchOptions(model=model_path, tasks=tasks, out=folder, iteration=iteration))
        scores = ", ".join(f"{t} {s.percent:.1f}" for t, s in result.results.scores.items())
        typer.echo(f"benchmarks of {result.results.label}: {scores}")
        write_bench_report(folder)

    return evaluate


def register(app: typer.Typer) -> None:
    """Add `savi train` and `savi loop` to the app."""
    command(app, "train", train)
    command(app, "loop", loop)

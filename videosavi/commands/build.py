"""`savi build` / `savi-build`: one iteration of preference pairs, and `savi merge-shards`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.options import (
    HUB_ENDPOINT,
    AllowGap,
    AllowRandomWeights,
    AllowShortfall,
    BuildModel,
    BuildOut,
    Config,
    DataRoot,
    Endpoint,
    LimitVideos,
    MergeOut,
    Progress,
    PublishDataset,
    PublishHub,
    Store,
    announce_config,
    command,
)
from videosavi.workflows.build_summary import print_summary


@friendly_errors
def build(
    iteration: Annotated[int, typer.Option("--iteration", "-i", min=1, help="Self-training iteration N (1..).")] = 1,
    config: Config = None,
    data_root: DataRoot = None,
    out: BuildOut = None,
    model: BuildModel = None,
    limit_videos: LimitVideos = None,
    num_shards: Annotated[int, typer.Option("--num-shards", min=1, help="Split the videos into S shards.")] = 1,
    shard_index: Annotated[int, typer.Option("--shard-index", min=0, help="Build only shard I (0-based).")] = 0,
    executor: Annotated[str, typer.Option(
        "--executor", help="Where the build runs: local (this process), or ray (shards as Ray tasks).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Ray cluster address (e.g. auto), with --executor ray.")] = None,
    force: Annotated[bool, typer.Option(
        "--overwrite", help="Start over: discard what a build wrote to --out (a run built with another setup is "
                            "refused without it).")] = False,
    previous: Annotated[Optional[str], typer.Option(
        "--previous",
        help="Retrospective builds (retrospective: true), iteration > 1: the previous iteration's run directory, "
             "or ORG/NAME@REV of its published revision (read from --store, --endpoint or --hub). Its rows hold "
             "the video descriptions this iteration revises.")] = None,
    dataset: PublishDataset = None,
    store: Store = None,
    endpoint: Endpoint = None,
    hub: PublishHub = False,
    allow_gap: AllowGap = False,
    allow_random_weights: AllowRandomWeights = False,
    allow_shortfall: AllowShortfall = False,
    progress: Progress = True,
) -> None:
    """Build one iteration: sample videos, ask/answer/critique/refine, validate, curate, write shards."""
    from videosavi.builders.run.executors.base import get_executor
    from videosavi.builders.run.runner import BuildOptions
    from videosavi.errors import ConfigError

    if hub and (store is not None or endpoint is not None):
        raise ConfigError("--hub excludes --store and --endpoint: it publishes to and reads from the Hub")
    progress_switch(progress)
    opts = BuildOptions(
        iteration=iteration, config=announce_config(config), data_root=data_root, out=out, model=model,
        limit_videos=limit_videos, num_shards=num_shards, shard_index=shard_index, force=force,
        allow_random_weights=allow_random_weights, allow_shortfall=allow_shortfall,
        **_previous(previous, store, HUB_ENDPOINT if hub else endpoint),
    )
    from videosavi.errors import BuildStoppedError

    try:
        result = get_executor(executor, **({"address": ray_address} if executor == "ray" else {})).run(opts)
    except BuildStoppedError as exc:  # build.json holds what was done: show it above the one-line reason
        if exc.run_dir is not None:
            print_summary(Path(str(exc.run_dir)))
        raise
    print_summary(result.run_dir)
    if result.pending_videos:
        typer.secho(
            f"{result.pending_videos} video(s) hit model-call errors and were left pending: run the same "
            "command again to retry them.", fg="yellow", err=True,
        )
    if dataset:
        from videosavi.hub.publish import publish_run

        res = publish_run(result.run_dir, dataset, backend="hub" if hub else "store", store=store,
                          allow_gap=allow_gap)
        typer.echo(f"published {dataset}@{res.tag} ({res.commit_sha[:12]}){' (no change)' if res.noop else ''}")


@friendly_errors
def merge_shards(
    shard_dirs: Annotated[list[Path], typer.Argument(help="Run directories of the shards.", show_default=False)],
    out: MergeOut,
    data_root: Annotated[Optional[Path], typer.Option(
        "--data-root", help="Root of the config's manifests, to draw reserve videos when the shards are short."
    )] = None,
    allow_shortfall: AllowShortfall = False,
) -> None:
    """Merge separately built shards (--num-shards/--shard-index) into one run directory (--out).

    When the shards together are short of their pairs, reserve videos are added to every shard's sample
    and the merge stops (exit 2): build the shards again with the same commands, then merge again. When
    the sources have no videos left, the merged run is written and the shortfall is an error (exit 2)
    unless --allow-shortfall."""
    from videosavi.builders.run.merge import merge_shards as do_merge

    do_merge(out, shard_dirs, data_root=data_root, allow_shortfall=allow_shortfall)
    print_summary(out)


def _previous(previous: Optional[str], store: Optional[Path], endpoint: Optional[str]) -> dict[str, Any]:
    """BuildOptions fields for --previous: a run directory goes as it is (the builder reads it); a published
    revision is read here, since the builder does not reach the hub."""
    if previous is None or Path(previous).is_dir():
        return {"previous": previous}
    from videosavi.paths import default_store
    from videosavi.training.previous_revision import previous_from_revision

    ctx = previous_from_revision(previous, store=None if endpoint else (store or default_store()), endpoint=endpoint)
    return {"previous": ctx.label, "previous_descriptions": ctx.descriptions,
            "previous_origin": {"name": ctx.name, "iteration": ctx.iteration}}


def register(app: typer.Typer) -> None:
    command(app, "build", build)
    command(app, "merge-shards", merge_shards)

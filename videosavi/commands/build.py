"""`savi build` / `savi-build`: one iteration of preference pairs, and `savi merge-shards`.

The build's options are `BuildOptions`' fields (videosavi/build_options.py), generated as flags; the
command adds the shared words (`--config`, `--data-root`, where to publish and read), the executor, and
publishing the finished build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from videosavi.build_options import BuildOptions
from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.dataclass_options import GivenOptions, with_dataclass_options
from videosavi.commands.options import (
    AllowGap,
    AllowShortfall,
    Config,
    DataRoot,
    MergeOut,
    Progress,
    PublishDataset,
    announce_config,
    command,
    location_options,
)
from videosavi.hub_location import HubLocation
from videosavi.workflows.build_summary import print_summary


@friendly_errors
@with_dataclass_options(BuildOptions, command="build", param="options")
@location_options("build")
def build(
    config: Config = None,
    data_root: DataRoot = None,
    executor: Annotated[str, typer.Option(
        "--executor", help="Where the build runs: local (this process), or ray (shards as Ray tasks).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Ray cluster address (e.g. auto), with --executor ray.")] = None,
    dataset: PublishDataset = None,
    allow_gap: AllowGap = False,
    progress: Progress = True,
    *,
    options: GivenOptions[BuildOptions],
    location: HubLocation,
) -> None:
    """Build one iteration: sample videos, ask/answer/critique/refine, validate, curate, write shards."""
    from videosavi.builders.run.executors.base import get_executor
    from videosavi.errors import BuildStoppedError

    progress_switch(progress)
    opts = options.over(BuildOptions(config=announce_config(config), data_root=data_root))
    opts = opts.replace(**_previous(opts.previous, location))
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

        res = publish_run(result.run_dir, dataset, backend=location.backend, store=location.store,
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


def _previous(previous: Optional[str], location: HubLocation) -> dict[str, Any]:
    """BuildOptions fields for --previous: a run directory goes as it is (the builder reads it); a published
    revision is read here, from where `location` says, since the builder does not reach the hub."""
    if previous is None or Path(previous).is_dir():
        return {"previous": previous}
    from videosavi.training.previous_revision import previous_from_revision

    store, endpoint = location.read()
    ctx = previous_from_revision(previous, store=store, endpoint=endpoint)
    return {"previous": ctx.label, "previous_descriptions": ctx.descriptions,
            "previous_origin": {"name": ctx.name, "iteration": ctx.iteration}}


def register(app: typer.Typer) -> None:
    command(app, "build", build)
    command(app, "merge-shards", merge_shards)

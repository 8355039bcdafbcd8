"""`savi build` / `savi-build`: one iteration of preference pairs, and `savi merge-shards`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.workflows.build_summary import print_summary


@friendly_errors
def build(
    iteration: int = typer.Option(1, "--iteration", "-i", min=1, help="Self-training iteration N (1..)."),
    config: Optional[str] = typer.Option(
        None, "--config", "-c", help="YAML config, or a bundled name (demo, videosavi). Default: demo."
    ),
    data_root: Optional[Path] = typer.Option(
        None, "--data-root", help="Root that config paths are relative to (default $VIDEOSAVI_DATA_ROOT or cwd)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/iterN)."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help="Model: tiny-qwen2-vl, a hub id, or a local directory (for N > 1: the previous iteration's model).",
    ),
    limit_videos: Optional[int] = typer.Option(None, "--limit-videos", min=1, help="Use only the first K videos."),
    num_shards: int = typer.Option(1, "--num-shards", min=1, help="Split the videos into S shards."),
    shard_index: int = typer.Option(0, "--shard-index", min=0, help="Build only shard I (0-based)."),
    executor: str = typer.Option("local", "--executor", help="local, or ray to run shards as Ray tasks."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (e.g. auto)."),
    force: bool = typer.Option(False, "--force", help="Discard a run directory built with another setup."),
    previous: Optional[str] = typer.Option(
        None, "--previous",
        help="Retrospective builds (retrospective: true), iteration > 1: the previous iteration's run directory, "
             "or ORG/NAME@REV of its published revision (read from --store or --endpoint). Its rows hold the "
             "video descriptions this iteration revises.",
    ),
    push: Optional[str] = typer.Option(None, "--push", help="Publish the result to this repo (org/name)."),
    store: Optional[Path] = typer.Option(
        None, "--store", help="Local store for --push and --previous ORG/NAME@REV (default: the cache)."),
    endpoint: Optional[str] = typer.Option(
        None, "--endpoint", help="Hub endpoint to read --previous ORG/NAME@REV from."),
    hub: bool = typer.Option(False, "--hub", help="With --push: publish to the Hugging Face Hub instead."),
    allow_gap: bool = typer.Option(False, "--allow-gap", help="With --push: publish although iter(N-1) is not."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Build one iteration: sample videos, ask/answer/critique/refine, validate, curate, write shards."""
    from videosavi.builders.runner import BuildOptions, run_build

    progress_switch(progress)
    opts = BuildOptions(
        iteration=iteration, config=config, data_root=data_root, out=out, model=model,
        limit_videos=limit_videos, num_shards=num_shards, shard_index=shard_index, force=force,
        **_previous(previous, store, endpoint),
    )
    if executor == "ray":
        from videosavi.builders.executors.ray_executor import run_build_ray

        result = run_build_ray(opts, address=ray_address)
    elif executor == "local":
        result = run_build(opts)
    else:
        raise typer.BadParameter(f"unknown executor {executor!r} (local or ray)", param_hint="--executor")
    print_summary(result.run_dir)
    if result.pending_videos:
        typer.secho(
            f"{result.pending_videos} video(s) hit model-call errors and were left pending: run the same "
            "command again to retry them.", fg="yellow", err=True,
        )
    if push:
        from videosavi.hub.publish import publish_run

        res = publish_run(result.run_dir, push, backend="hub" if hub else "store", store=store, allow_gap=allow_gap)
        typer.echo(f"published {push}@{res.tag} ({res.commit_sha[:12]}){' (no change)' if res.noop else ''}")


@friendly_errors
def merge_shards(
    out: Path = typer.Argument(..., help="Run directory to write the merged result into."),
    shard_dirs: list[Path] = typer.Argument(..., help="Run directories of the shards."),
    data_root: Optional[Path] = typer.Option(
        None, "--data-root", help="Root of the config's manifests, to draw reserve videos when the shards are short."
    ),
) -> None:
    """Merge separately built shards (--num-shards/--shard-index) into one run directory.

    When the shards together are short of their pairs, reserve videos are added to every shard's sample
    and the merge stops (exit 2): build the shards again with the same commands, then merge again."""
    from videosavi.builders.merge import merge_shards as do_merge

    do_merge(out, shard_dirs, data_root=data_root)
    print_summary(out)


def _previous(previous: Optional[str], store: Optional[Path], endpoint: Optional[str]) -> dict[str, Any]:
    """BuildOptions fields for --previous: a run directory goes as it is (the builder reads it); a published
    revision is read here, since the builder does not reach the hub."""
    if previous is None or Path(previous).is_dir():
        return {"previous": previous}
    from videosavi.paths import default_store
    from videosavi.training.previous_revision import previous_from_revision

    ctx = previous_from_revision(previous, store=None if endpoint else (store or default_store()), endpoint=endpoint)
    return {"previous": ctx.label, "previous_descriptions": ctx.descriptions}


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("merge-shards")(merge_shards)

"""`savi publish RUN_DIR --dataset org/name`: one commit + tag `iterN` on the local store or the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.options import AllowGap, Progress, PublishTo, command, location_options
from videosavi.hub_location import HubLocation


@friendly_errors
@location_options("publish")
def publish(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (build.json, data/, videos.parquet).")],
    dataset: PublishTo,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Tag name (default iterN from build.json).")] = None,
    force: Annotated[bool, typer.Option(
        "--overwrite", help="Move an existing tag to different content (the commit it named stays in the "
                            "history).")] = False,
    allow_gap: AllowGap = False,
    progress: Progress = True,
    *,
    location: HubLocation,
) -> None:
    """Validate RUN_DIR, render its card and plots, publish ONE commit and tag it."""
    from videosavi.hub.publish import publish_run

    progress_switch(progress)
    res = publish_run(run_dir, dataset, backend=location.backend, store=location.store, tag=tag, force=force,
                      allow_gap=allow_gap)
    if res.noop:
        typer.echo(f"{res.repo}@{res.tag} already holds exactly this content ({res.commit_sha[:12]}); nothing to do")
    else:
        typer.echo(f"published {res.repo}@{res.tag} -> {res.commit_sha[:12]} ({res.url_or_path})")
    if location.backend == "store":
        store_root = Path(res.url_or_path).parents[2]
        typer.echo(f"serve it with: savi hub serve --store {store_root}")


def register(app: typer.Typer) -> None:
    """Add `savi publish` to the app."""
    command(app, "publish", publish)

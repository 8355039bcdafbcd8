"""`savi publish RUN_DIR --repo org/name`: one commit + tag `iterN` on the local store or the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch


@friendly_errors
def publish(
    run_dir: Path = typer.Argument(..., help="A finished run directory (build.json, data/, videos.parquet)."),
    repo: str = typer.Option(..., "--repo", "-r", help="Dataset repository id, org/name."),
    store: Optional[Path] = typer.Option(
        None, "--store", help="Local store root (default $VIDEOSAVI_STORE or the user cache)."
    ),
    hub: bool = typer.Option(False, "--hub", help="Publish to the Hugging Face Hub (token: HF_TOKEN or hf login)."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Tag name (default iterN from build.json)."),
    force: bool = typer.Option(False, "--force", help="Move an existing tag to different content."),
    allow_gap: bool = typer.Option(False, "--allow-gap", help="Publish iterN although iter(N-1) is not published."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """Validate RUN_DIR, render its card and plots, publish ONE commit and tag it."""
    from videosavi.errors import PublishError
    from videosavi.hub.publish import publish_run

    if hub and store is not None:
        raise PublishError("--store and --hub exclude each other: pick the local store or the Hub")
    progress_switch(progress)
    res = publish_run(run_dir, repo, backend="hub" if hub else "store", store=store, tag=tag, force=force,
                      allow_gap=allow_gap)
    if res.noop:
        typer.echo(f"{res.repo}@{res.tag} already holds exactly this content ({res.commit_sha[:12]}); nothing to do")
    else:
        typer.echo(f"published {res.repo}@{res.tag} -> {res.commit_sha[:12]} ({res.url_or_path})")
    if not hub:
        store_root = Path(res.url_or_path).parents[2]
        typer.echo(f"serve it with: savi hub serve --store {store_root}")


def register(app: typer.Typer) -> None:
    """Add `savi publish` to the app."""
    app.command("publish")(publish)

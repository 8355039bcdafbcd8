"""`savi export`: a published revision as JSONL that ms-swift or LLaMA-Factory read as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch


@friendly_errors
def export(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Published dataset repo, org/name."),
    revision: str = typer.Option(..., "--revision", "-r", help="Tag, branch or commit sha (e.g. iter1)."),
    format: str = typer.Option(..., "--format", "-f", help="swift (ms-swift DPO), llamafactory (sharegpt ranking + "
                               "dataset_info.json) or sharegpt (the same rows without dataset_info.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write; must be empty or new (see --overwrite)."),
    video_root: list[str] = typer.Option(
        [], "--video-root", help="SOURCE=DIR, once per source in the revision (e.g. star=/data/charades)."
    ),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Build config naming each source's root."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Root the config's source paths are under."),
    store: Optional[Path] = typer.Option(None, "--store", help="Read the revision from this local git store."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="Hub API endpoint (e.g. a `savi hub serve` URL)."),
    clips: str = typer.Option("cut", "--clips", help="cut: each clip span (STAR) becomes its own video file; "
                              "frames: every row's stored frames as images."),
    image_format: str = typer.Option("jpg", "--image-format", help="jpg or png, for --clips frames."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name in dataset_info.json (default: "
                                       "<repo name>_<revision>)."),
    max_missing_share: float = typer.Option(
        0.05, "--max-missing-share", help="Stop if more than this share of pairs lack a usable video."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what --out holds."),
    workers: int = typer.Option(2, "--workers", help="Threads hashing videos and cutting clips."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """Write OUT/train.jsonl (absolute video paths, clip spans cut), OUT/skipped.jsonl and OUT/export.json."""
    from videosavi.workflows.export import ExportOptions, export_revision

    progress_switch(progress)
    result = export_revision(ExportOptions(
        dataset=dataset, revision=revision, format=format, out=out, video_roots=video_root, config=config,
        data_root=data_root, store=store, endpoint=endpoint, clips=clips, image_format=image_format, name=name,
        max_missing_share=max_missing_share, overwrite=overwrite, workers=workers,
    ))
    skipped = sum(result.skipped.values())
    typer.echo(f"{dataset}@{revision} ({result.sha[:12]}) -> {result.data_file}: {result.rows} of "
               f"{result.total_rows} pairs" + (f", {skipped} left out ({result.skipped}, see skipped.jsonl)"
                                               if skipped else "")
               + (f", {result.clips_cut} clips cut" if result.clips_cut else "")
               + (f", {result.frame_folders} frame folders" if result.frame_folders else "")
               + f" in {result.seconds:.1f} s")
    if format == "llamafactory":
        typer.echo(f"LLaMA-Factory: dataset_dir: {result.out}  dataset: {result.dataset_name}")


def register(app: typer.Typer) -> None:
    """Add `savi export` to the app."""
    app.command("export")(export)

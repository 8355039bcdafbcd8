"""`savi export`: a published revision as JSONL that ms-swift or LLaMA-Factory read as they are."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.options import (
    DataRoot,
    Dataset,
    ExportOut,
    MaxMissingShare,
    Progress,
    Revision,
    SourcesConfig,
    VideoRoots,
    command,
    location_options,
)
from videosavi.hub_location import HubLocation
from videosavi.training_options import DEFAULT_MAX_MISSING_SHARE


@friendly_errors
@location_options("read")
def export(
    dataset: Dataset,
    revision: Revision,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="swift (ms-swift DPO), llamafactory (sharegpt ranking + dataset_info.json) or sharegpt "
                               "(the same rows without dataset_info.json).")],
    out: ExportOut,
    video_root: VideoRoots = None,
    config: SourcesConfig = None,
    data_root: DataRoot = None,
    clips: Annotated[str, typer.Option(
        "--clips", help="cut: each clip span (STAR) becomes its own video file; frames: every row's stored frames "
                        "as images.")] = "cut",
    image_format: Annotated[str, typer.Option("--image-format", help="jpg or png, for --clips frames.")] = "jpg",
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Dataset name in dataset_info.json (default: <repo name>_<revision>).")] = None,
    max_missing_share: MaxMissingShare = DEFAULT_MAX_MISSING_SHARE,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace what --out holds.")] = False,
    threads: Annotated[int, typer.Option("--threads", help="Threads hashing videos and cutting clips.")] = 2,
    progress: Progress = True,
    *,
    location: HubLocation,
) -> None:
    """Write OUT/train.jsonl (absolute video paths, clip spans cut), OUT/skipped.jsonl and OUT/export.json."""
    from videosavi.workflows.export import ExportOptions, export_revision

    read_store, read_endpoint = location.read()
    progress_switch(progress)
    result = export_revision(ExportOptions(
        dataset=dataset, revision=revision, format=format, out=out, video_roots=video_root or [], config=config,
        data_root=data_root, store=read_store, endpoint=read_endpoint, clips=clips, image_format=image_format,
        name=name, max_missing_share=max_missing_share, overwrite=overwrite, threads=threads,
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
    command(app, "export", export)

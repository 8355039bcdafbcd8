"""`savi demo-data` (synthetic demo sources) and `savi sample` (seeded sample -> videos.parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.options import (
    Config,
    DataRoot,
    DemoDataOut,
    Progress,
    SampleOut,
    announce_config,
    command,
)


@friendly_errors
def demo_data(
    out: DemoDataOut,
    videos_per_source: Annotated[int, typer.Option(
        "--videos-per-source", min=1, help="Video files per source (configs/demo.yaml needs at least 4).")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the synthetic videos and manifests.")] = 0,
) -> None:
    """Write small synthetic videos and manifests in the STAR, VIDAL-10M and WebVid formats."""
    from videosavi.builders.sources.demo_data import write_demo_data

    out_dir = out

    d = write_demo_data(out_dir, videos_per_source=videos_per_source, seed=seed)
    for s in d.videos:
        typer.echo(f"{s:7s} {d.videos[s]} video files, {d.listed[s]} listed ({d.missing[s]} without a file)")
    typer.echo(f"wrote {out_dir} in {d.seconds:.1f} s; next: savi sample --config demo --data-root {out_dir} "
               "--out runs/demo-sample --decode")


@friendly_errors
def sample(
    out: SampleOut,
    config: Config = None,
    data_root: DataRoot = None,
    decode: Annotated[bool, typer.Option(
        "--decode", help="Also decode every sampled video through the worker pool.")] = False,
    hash_files: Annotated[bool, typer.Option("--hash/--no-hash", help="Record each sampled file's sha256.")] = True,
    force: Annotated[bool, typer.Option("--overwrite", help="Replace an existing videos.parquet in --out.")] = False,
    progress: Progress = True,
) -> None:
    """Sample the configured sources (seeded, stratified) into RUN_DIR/videos.parquet and summarise."""
    from videosavi.builders.run.runner import BUILD_COMMAND, RUN_DIR_ENTRIES, guard_run_dir
    from videosavi.builders.sources.sampler import sample_key, sample_videos
    from videosavi.config import load_config, resolve_data_root
    from videosavi.errors import ConfigError
    from videosavi.out_guard import claim_folder
    from videosavi.run_dir import RunDir

    progress_switch(progress)
    cfg = load_config(announce_config(config))
    root = resolve_data_root(data_root)
    run = RunDir(out)
    guard_run_dir(run.path, cfg, root, force)  # the run directory a build goes on with: apart from the videos
    if run.videos.exists() and not force:
        raise ConfigError(f"{run.videos} already exists: pass --overwrite to replace it, or choose another --out")
    result = sample_videos(cfg, root, hash_files=hash_files)
    claim_folder(run.path, BUILD_COMMAND, RUN_DIR_ENTRIES)
    run.write_videos(result.videos, sample_key(cfg))
    report = None
    if decode:
        from videosavi.builders.decode.check import decode_sample

        report = decode_sample(result.videos, cfg, root)
    _print_summary(result, report, run.videos)


def _print_summary(result: Any, report: Any, videos_file: Path) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sample (seed {result.seed}) -> {videos_file}", box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True, pad_edge=False)
    headers = ["source", "quota", "listed", "sampled", "unavail.", "bad rows", "shortfall"]
    headers += ["decoded", "skipped"] if report is not None else []
    for col in headers:
        table.add_column(col, justify="left" if col == "source" else "right", no_wrap=True, min_width=len(col))
    notes = []
    for s in result.sources:
        row = [s.source, str(s.quota), str(s.candidates), str(s.sampled), str(s.unavailable), str(s.rejected),
               f"[red]{s.shortfall}[/red]" if s.shortfall else "0"]
        if report is not None:
            row += [str(report.decoded_by_source[s.source]), str(report.skipped_by_source[s.source])]
        table.add_row(*row)
        if s.held_out:
            notes.append(f"{s.source}: {s.held_out} candidate(s) held out for `savi eval` (config eval.holdout)")
        if s.unavailable_reasons:
            notes.append(f"{s.source}: unavailable " + ", ".join(f"{k}: {v}" for k, v in
                                                                sorted(s.unavailable_reasons.items())))
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note, markup=False)
    for r in result.rejected_examples:
        console.print(f"  rejected {r.source} row {r.video_id!r}: {r.problem}")
    if report is not None:
        decoders = ", ".join(f"{k}: {v}" for k, v in sorted(report.by_decoder.items())) or "none"
        console.print(f"decoded {report.decoded}/{report.attempted} videos in {report.wall_s:.2f} s: "
                      f"{report.seconds_per_video:.3f} s per video, {report.videos_per_second:.1f} videos/s")
        console.print(f"decoders: {decoders}")
        if report.skipped:
            console.print("skipped: " + ", ".join(f"{k}: {v}" for k, v in sorted(report.skipped.items())))
            for uid, reason, message in report.examples:
                console.print(f"  {uid}: {reason}: {message}", markup=False)


def register(app: typer.Typer) -> None:
    command(app, "demo-data", demo_data)
    command(app, "sample", sample)

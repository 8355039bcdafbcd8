"""`savi humaneval export` and `savi humaneval score`: the paper's human check of pairs (section 4.2)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from videosavi.commands._common import friendly_errors
from videosavi.commands.options import (
    DataRoot,
    JsonOutput,
    MaybeDataset,
    MaybeRevision,
    RatedSheetOut,
    SheetOut,
    SourcesConfig,
    VideoRoots,
    VocabCommand,
    location_options,
)
from videosavi.hub_location import HubLocation

humaneval_app = typer.Typer(
    name="humaneval", help="Blind rater sheets of pairs, and scoring of the filled sheets.", no_args_is_help=True
)


@humaneval_app.command("export", cls=VocabCommand)
@friendly_errors
@location_options("read")
def export(
    out: SheetOut,
    key: Annotated[Path, typer.Option("--key", "-k", help="Key file to write (CSV); keep it away from raters.")],
    dataset: MaybeDataset = None,
    revision: MaybeRevision = None,
    run_dir: Annotated[Optional[Path], typer.Option(
        "--run-dir", help="Use a run directory instead of a revision.")] = None,
    n: Annotated[Optional[int], typer.Option(
        "--n", min=1, help="Items, one pair per video (default 516, or the sum of --per-type counts).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draw, the item order and the A/B order.")] = 0,
    per_type: Annotated[str, typer.Option(
        "--per-type",
        help="Items per question type: proportional (to the data), equal, or counts: temporal=261,spatial=255.",
    )] = "proportional",
    allow_fewer: Annotated[bool, typer.Option(
        "--allow-fewer", help="Export fewer items when videos run short.")] = False,
    bom: Annotated[bool, typer.Option("--bom", help="Start files with a UTF-8 BOM (older Excel needs it).")] = False,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="csv (a rater sheet), or label-studio (tasks JSON at --out, the labeling config "
                               "beside it).")] = "csv",
    video_url_prefix: Annotated[Optional[str], typer.Option(
        "--video-url-prefix", metavar="PREFIX",
        help="label-studio: each task's video is PREFIX + SOURCE/PATH (default /data/local-files/?d=, Label "
             "Studio's own local-files route).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out and --key if they exist.")] = False,
    *,
    location: HubLocation,
) -> None:
    """Write a blind sheet (answers as A/B in random order, no question type) and its key."""
    from videosavi.curation.stats import pairs_frame
    from videosavi.errors import ConfigError
    from videosavi.hub.revision_frame import load_revision_frame
    from videosavi.out_guard import check_out_file
    from videosavi.workflows.humaneval import export_humaneval
    from videosavi.workflows.humaneval.sampling import parse_per_type

    for option, path in (("--out", out), ("--key", key)):
        check_out_file(path, overwrite=overwrite, option=option, flag="--overwrite")
    if bool(run_dir) == bool(dataset):
        raise ConfigError("give either --run-dir DIR or --dataset REPO --revision REV")
    if dataset and not revision:
        raise ConfigError("--dataset needs --revision (e.g. --revision iter3)")
    quotas = parse_per_type(per_type)
    read_store, read_endpoint = location.read()
    if run_dir:
        frame = pairs_frame(run_dir)
    else:
        assert dataset is not None and revision is not None  # checked above
        frame = load_revision_frame(dataset, revision, store=read_store, endpoint=read_endpoint)
    res = export_humaneval(frame, out, key, n=n, seed=seed, per_type=quotas, allow_fewer=allow_fewer, bom=bom,
                           fmt=fmt, video_url_prefix=video_url_prefix)
    for note in res.notes:
        typer.secho(f"note: {note}", fg="yellow", err=True)
    quotas = ", ".join(f"{v} {k}" for k, v in res.quotas.items())
    what = "Label Studio tasks" if fmt == "label-studio" else "items"
    typer.echo(f"wrote {res.n_items} {what} ({quotas}) from {res.available_videos} videos to {res.sheet}")
    for path in res.also_written:
        typer.echo(f"wrote the labeling config to {path} (Label Studio: project settings -> Labeling Interface)")
    typer.echo(f"wrote the key to {res.key}: do not share it with raters")


def _rate_cells(rate: Any) -> tuple[str, str]:
    if rate.rate is None:
        return "- (0)", "-"
    return f"{100 * rate.rate:.1f}% ({rate.yes}/{rate.n})", f"{100 * rate.ci_low:.1f}-{100 * rate.ci_high:.1f}%"


def _rates_table(title: str, scores: list[Any], columns: list[tuple[str, Any]]) -> Any:
    """One row per rater (and the majority); `columns`: (header, score -> Rate)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("rater", style="bold")
    for header, _ in columns:
        table.add_column(header, justify="right")
        table.add_column("95% CI", justify="right", style="dim")
    for score in scores:
        cells: list[str] = []
        for _, get in columns:
            cells += _rate_cells(get(score))
        table.add_row(score.rater, *cells)
    return table


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from videosavi.workflows.humaneval.score import CRITERIA

    console = Console()
    types = list(report.majority.by_type)
    scores = [*report.raters, report.majority] if len(report.raters) > 1 else report.raters
    console.print(_rates_table(
        f"pair correctness ({report.key_items} items)", scores,
        [("overall", lambda s: s.overall), *((t, lambda s, t=t: s.by_type[t]) for t in types)]))
    console.print("correct = the question is answerable, the chosen answer accurate and the rejected one has "
                  "clear errors (the paper's three criteria)", markup=False)
    console.print(_rates_table("each criterion alone", scores, [(c, lambda s, c=c: s.criteria[c]) for c in CRITERIA]))
    console.print("chosen_accurate and rejected_clear_errors count answerable items only", markup=False)
    console.print(_rates_table(
        "blind pick", scores,
        [("overall", lambda s: s.prefers_chosen), *((t, lambda s, t=t: s.prefers_chosen_by_type[t]) for t in types)]))
    console.print("blind pick: how often raters prefer the model's chosen answer, over answerable items; "
                  "not part of correctness", markup=False)
    if len(report.raters) > 1:
        console.print(f"majority: an item counts when more than half of its valid ratings say so; "
                      f"{report.majority_ties} correctness tie(s) counted as not correct")
    if report.agreement:
        agree = Table(title="agreement between raters")
        for col in ("judgement", "method", "kappa", "items"):
            agree.add_column(col, justify="left" if col in ("judgement", "method") else "right")
        for a in report.agreement:
            agree.add_row(a.judgement, a.method, "-" if a.kappa is None else f"{a.kappa:.3f}", str(a.n_items))
        console.print(agree)
    if report.problems:
        probs = Table(title=f"{len(report.problems)} row(s) not scored", title_style="yellow")
        for col in ("sheet", "line", "item", "problem"):
            probs.add_column(col)
        for p in report.problems:
            probs.add_row(p.sheet, "-" if p.line is None else str(p.line), p.item_id, "; ".join(p.problems))
        console.print(probs)


@humaneval_app.command("score", cls=VocabCommand)
@friendly_errors
def score(
    sheets: Annotated[list[Path], typer.Argument(
        help="Filled rater sheets (CSV, one per rater), or Label Studio JSON exports (one rater per annotator).")],
    key: Annotated[Path, typer.Option("--key", "-k", help="The key file written by export.")],
    as_json: JsonOutput = False,
) -> None:
    """Pair correctness per question type and overall (95% Wilson CI), and agreement between raters.

    A pair is correct iff the question is answerable, the chosen answer is accurate and the rejected
    one has clear errors (the paper's three criteria). The rater's blind pick of the better answer is
    reported apart, never folded into correctness. Rows with missing or invalid judgements are listed.
    """
    from videosavi.workflows.humaneval import score_sheets

    report = score_sheets(sheets, key)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_report(report)


@humaneval_app.command("serve", cls=VocabCommand)
@friendly_errors
def serve(
    sheet: Annotated[Path, typer.Option("--sheet", help="The rater sheet written by `savi humaneval export`.")],
    rater: Annotated[str, typer.Option("--rater", help="The rater's name, written into the filled sheet.")],
    video_root: VideoRoots = None,
    config: SourcesConfig = None,
    data_root: DataRoot = None,
    out: RatedSheetOut = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one).")] = 8765,
) -> None:
    """Rate a sheet in the browser: one item at a time, its video playing only the clip span, every answer
    saved at once to the filled sheet (resumed where it stopped); Ctrl-C stops the page."""
    import signal

    from videosavi.training.video_roots import resolve_roots
    from videosavi.workflows.humaneval.rater_page import RaterServer, ServeOptions

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    roots = resolve_roots(video_root or [], config, data_root)
    options = ServeOptions(sheet=sheet, rater=rater, roots=roots, out=out, port=port)
    with RaterServer(options) as server:
        assert server.page is not None  # started
        rated = server.page.rated
        if server.missing:
            first = server.missing[0][1]
            typer.secho(f"warning: {len(server.missing)} of {len(rated.items)} videos cannot be found (first: "
                        f"{first}); the page says so on those items", fg="yellow", err=True)
        where = "starting" if rated.done == 0 else f"resuming: {rated.done} of {len(rated.items)} rated"
        typer.echo(f"rater page for {rated.rater}: {server.url} ({where}; Ctrl-C to stop)")
        typer.echo(f"answers are saved to {rated.out} as they are given")
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()
        typer.echo(f"stopped: {rated.done} of {len(rated.items)} rated, saved in {rated.out}")


def register(app: typer.Typer) -> None:
    """Add the `savi humaneval` group to the app."""
    app.add_typer(humaneval_app, name="humaneval")

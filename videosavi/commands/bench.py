"""`savi bench`: a model's benchmark scores through LMMs-Eval; `savi bench report`: Table 1 / Figure 3 and
the model cards' evaluation results from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.options import BatchSize, ModelRevision, Progress, VocabCommand, VocabGroup

bench_app = typer.Typer(
    name="bench",
    cls=VocabGroup,
    help="Evaluate a model on benchmarks with LMMs-Eval (the paper's six by default); `savi bench report` "
         "writes the table, the plot and the model cards' evaluation results.",
    no_args_is_help=True,
    invoke_without_command=True,
)

BenchModel = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Model to evaluate: a folder, a hub id, a tiny-* test model, a model served at --base-url, "
                          "or a `savi loop` folder with --iteration N.")]
BenchOut = Annotated[Path, typer.Option(
    "--out", "-o", help="Results folder: <label>.json per model, LMMs-Eval's own output under lmms-eval/.")]
Tasks = Annotated[Optional[list[str]], typer.Option(
    "--tasks", metavar="TASK", help="paper (the six: tempcompass perceptiontest nextqa mvbench egoschema "
                                    "longvideobench), those short names, videosavi_tiny_mc, or any LMMs-Eval task.")]
Iteration = Annotated[Optional[int], typer.Option(
    "--iteration", "-i", min=0, help="The self-training iteration of the model (0: the base model); with a `savi "
                                     "loop` folder as --model, which model of it.")]


@friendly_errors
def bench(
    ctx: typer.Context,
    model: BenchModel = None,
    tasks: Tasks = None,
    out: BenchOut = Path("runs/bench"),
    iteration: Iteration = None,
    label: Annotated[Optional[str], typer.Option(
        "--label", help="Name of the model's results (<label>.json); default base / iterN, else the folder's "
                        "name.")] = None,
    include_path: Annotated[Optional[list[Path]], typer.Option(
        "--include-path", help="Folders of local LMMs-Eval task YAMLs.")] = None,
    lmms_eval: Annotated[Optional[Path], typer.Option(
        "--lmms-eval", help="The LMMs-Eval venv (default $VIDEOSAVI_LMMS_EVAL or .venv-lmms-eval: `make "
                            "bench-env`).")] = None,
    base_url: Annotated[Optional[str], typer.Option(
        "--base-url", help="Evaluate --model as served by this OpenAI-compatible server (LMMs-Eval's openai "
                           "wrapper).")] = None,
    api_key_env: Annotated[str, typer.Option(
        "--api-key-env", help="Environment variable holding the server's API key.")] = "OPENAI_API_KEY",
    lmms_model: Annotated[Optional[str], typer.Option(
        "--lmms-model", help="LMMs-Eval model wrapper (default: from the checkpoint's model_type).")] = None,
    model_arg: Annotated[Optional[list[str]], typer.Option(
        "--model-arg", metavar="KEY=VALUE", help="Extra argument of the LMMs-Eval wrapper.")] = None,
    model_revision: ModelRevision = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per video (paper: 32).")] = 32,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    batch_size: BatchSize = 1,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help="Only the first N samples of each task (a smoke run; marked in the results).")] = None,
    force: Annotated[bool, typer.Option(
        "--overwrite", help="Evaluate again the tasks the results already hold, replacing their scores.")] = False,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", min=1, help="Stop a task's LMMs-Eval run after this many seconds.")] = None,
    progress: Progress = True,
) -> None:
    """Evaluate --model on --tasks with LMMs-Eval; a task already in the results is not evaluated again."""
    if ctx.invoked_subcommand is not None:
        return
    from videosavi.errors import BenchError
    from videosavi.workflows.bench.run import BenchOptions, parse_model_args, run_bench

    progress_switch(progress)
    if model is None:
        raise BenchError("give the model to evaluate with --model (see savi bench --help)")
    if device not in ("auto", "cpu", "cuda"):
        raise BenchError(f"--device must be auto, cpu or cuda, not {device!r}")
    opts = BenchOptions(
        model=model, tasks=list(tasks or ["paper"]), out=out, iteration=iteration, label=label,
        include_paths=list(include_path or []), lmms_eval=lmms_eval, base_url=base_url, api_key_env=api_key_env,
        lmms_model=lmms_model, model_args=parse_model_args(list(model_arg or [])), model_revision=model_revision,
        frames=frames, device=_device(device), batch_size=batch_size, limit=limit, force=force, timeout_s=timeout,
    )
    result = _run_with_status(opts, run_bench)
    _print_scores(result)


def _device(value: str) -> Literal["auto", "cpu", "cuda"]:
    return "cpu" if value == "cpu" else ("cuda" if value == "cuda" else "auto")


def _run_with_status(opts: Any, run: Any) -> Any:
    from videosavi.progress import status_console

    console = status_console()
    with console.status("checking LMMs-Eval, the tasks and the model") as status:
        def on_progress(task: str, i: int, total: int, done: tuple[int, int] | None) -> None:
            samples = f", {done[0]}/{done[1]} samples" if done else ""
            status.update(f"LMMs-Eval: task {i + 1}/{total} {task}{samples}")

        return run(opts, on_progress)


def _print_scores(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    res = result.results
    table = Table(title=f"{res.label}: {res.model.name_or_path} ({res.model.revision})")
    for col in ("task", "metric", "score %", "n", "note"):
        table.add_column(col)
    for task, s in res.scores.items():
        note = "; ".join(n for n in ("new" if task in result.ran else "", f"first {s.limit}" if s.limit else "") if n)
        table.add_row(task, s.metric, f"{s.percent:.1f}", str(s.n), note)
    Console().print(table)
    typer.echo(f"results: {result.results_file}" + (f" ({len(result.already)} task(s) already there)"
                                                    if result.already else ""))


@bench_app.command("report", cls=VocabCommand)
@friendly_errors
def report(
    results: Annotated[Path, typer.Option(
        "--results", help="A savi bench results folder (its --out).")] = Path("runs/bench"),
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for table.md/.json, scores.png and cards/ (default RESULTS/report).")] = None,
    base: Annotated[Optional[str], typer.Option(
        "--base", help="Label of the row to compare with (default: the base model, iteration 0).")] = None,
    cards: Annotated[bool, typer.Option(
        "--cards/--no-cards", help="Also write the scores into each evaluated model folder's card.")] = True,
    paper: Annotated[bool, typer.Option(
        "--paper/--no-paper", help="Add the paper's Table 1 numbers as reference rows.")] = True,
) -> None:
    """Table 1 / Figure 3 (scores by iteration, changes over the base) and the cards' evaluation results."""
    from videosavi.workflows.bench.report import write_bench_report

    rep = write_bench_report(results, out, base=base, update_cards=cards, paper_rows=paper)
    typer.echo(rep.table_md.read_text(encoding="utf-8"))
    typer.echo(f"table: {rep.table_md}, {rep.table_json}; figure: {rep.figure}; cards: {rep.folder / 'cards'}")
    for path in rep.cards_updated:
        typer.echo(f"model card updated: {path}")


def register(app: typer.Typer) -> None:
    """Add `savi bench` and `savi bench report` to the app."""
    bench_app.callback()(bench)
    app.add_typer(bench_app)

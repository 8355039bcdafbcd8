"""`savi eval make-set | answer | judge`: the paper's error analysis (Table 2) on your own iterations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from videosavi.commands._common import friendly_errors
from videosavi.commands.options import (
    AnswerModel,
    AnswersOut,
    BatchSize,
    DataRoot,
    EvalConfig,
    EvalSetOut,
    JsonOutput,
    JudgeModel,
    JudgeOut,
    MaybeDataset,
    MaybeRevision,
    QuestionModel,
    VocabCommand,
    announce_config,
    location_options,
)
from videosavi.hub_location import HubLocation

eval_app = typer.Typer(
    name="eval",
    help="A fixed eval set of held-out videos, each iteration's answers to it, and a judge's error table.",
    no_args_is_help=True,
)

Backend = Annotated[Optional[str], typer.Option(
    "--backend", help="tiny, transformers or openai (default: guessed from the model name and --base-url).")]
BaseUrl = Annotated[Optional[str], typer.Option(
    "--base-url", help="OpenAI-compatible server, e.g. https://api.openai.com/v1 (GPT-4o) or a vLLM server.")]


Protocol = Annotated[str, typer.Option(
    "--protocol", help="held-out: questions about videos no build of the config can use (the default); paper: "
                       "the questions of iteration 1's published pairs (--dataset, --revision iter1), as the paper's "
                       "Table 2 did.")]


@eval_app.command("make-set", cls=VocabCommand)
@friendly_errors
@location_options("read_store")
def make_set(
    out: EvalSetOut,
    config: EvalConfig = None,
    data_root: DataRoot = None,
    n: Annotated[Optional[int], typer.Option(
        "--n", min=1, help="Questions, one per video (default 200, or the file's).")] = None,
    questions: Annotated[Optional[Path], typer.Option(
        "--questions", help="Use these questions (.jsonl/.csv/.parquet: video_uid, question_type, question).")] = None,
    model: QuestionModel = None,
    protocol: Protocol = "held-out",
    dataset: MaybeDataset = None,
    revision: MaybeRevision = None,
    force: Annotated[bool, typer.Option("--overwrite", help="Replace an existing eval set in --out.")] = False,
    *,
    location: HubLocation,
) -> None:
    """Write a fixed eval set: held-out videos with one question each, or (--protocol paper) iteration 1's questions."""
    from videosavi.builders.run.runner import apply_model_override, check_random_weights
    from videosavi.config import load_config, resolve_data_root
    from videosavi.errors import ConfigError
    from videosavi.workflows.evaluation.make_set import make_eval_set

    if protocol == "held-out" and revision is not None:
        raise ConfigError("--revision is for --protocol paper (questions of a published revision)")
    if protocol not in ("held-out", "paper"):
        raise ConfigError(f"unknown --protocol {protocol!r}: use held-out or paper")
    cfg = load_config(announce_config(config))
    if protocol == "paper":
        if dataset is None:
            raise ConfigError("--protocol paper takes its questions from a published revision: pass --dataset "
                              "ORG/NAME (and --revision iter1, --store/--endpoint/--hub)")
        if questions is not None or model is not None:
            raise ConfigError("--protocol paper takes the questions of the revision: --questions and --model do "
                              "not apply")
        info = _paper_set(cfg, out, dataset, revision or "iter1", location.read(), n, force)
    else:
        if dataset is not None:
            raise ConfigError("--dataset is for --protocol paper (questions of a published revision)")
        check_random_weights(cfg, model, allow=False)
        cfg = apply_model_override(cfg, model)
        info = make_eval_set(cfg, resolve_data_root(data_root), out, n=n, questions_file=questions, force=force)
    types = ", ".join(f"{v} {k}" for k, v in info.by_question_type.items())
    sources = ", ".join(f"{v} {k}" for k, v in info.by_source.items())
    typer.echo(f"wrote {info.n_questions} questions ({types}; {sources}) to {out}")
    typer.echo(f"eval set {info.set_id}, questions {info.question_version}")
    if info.skipped:
        typer.secho(f"note: {len(info.skipped)} drawn video(s) gave no question (listed in evalset.json)",
                    fg="yellow", err=True)


def _paper_set(cfg: Any, out: Path, dataset: str, revision: str, where: tuple[Path | None, str | None],
               n: int | None, force: bool) -> Any:
    """The paper protocol's set, from the revision's pairs read at its commit (record columns)."""
    from videosavi.formats.published_rows import record_columns
    from videosavi.hub.load import load_revision, resolve_revision
    from videosavi.workflows.evaluation.make_set import make_paper_eval_set

    store, endpoint = where
    sha = resolve_revision(dataset, revision, store=store, endpoint=endpoint)
    rows = record_columns(load_revision(dataset, sha, store=store, endpoint=endpoint)).to_list()
    return make_paper_eval_set(cfg, out, rows, revision_label=f"{dataset}@{revision} ({sha[:12]})", n=n,
                               force=force)


def _model_config(name: str, backend: str | None, base_url: str | None, batch_size: int,
                  constrained: bool = True) -> Any:
    from videosavi.workflows.evaluation.models import eval_model_config

    return eval_model_config(name, backend=backend, base_url=base_url, batch_size=batch_size, constrained=constrained)


@eval_app.command("answer", cls=VocabCommand)
@friendly_errors
def answer(
    eval_set: Annotated[Path, typer.Option("--set", help="Eval set folder (savi eval make-set).")],
    model: AnswerModel,
    out: AnswersOut,
    label: Annotated[Optional[str], typer.Option(
        "--label", help="Column name in the judge's table (default: --out's folder name).")] = None,
    data_root: DataRoot = None,
    backend: Backend = None,
    base_url: BaseUrl = None,
    batch_size: BatchSize = 8,
    force: Annotated[bool, typer.Option(
        "--overwrite", help="Replace answers made in --out with another setup.")] = False,
) -> None:
    """Answer every question of the set with the answer-stage prompt (resumable)."""
    from videosavi.config import resolve_data_root
    from videosavi.workflows.evaluation.answer import answer_eval_set

    res = answer_eval_set(eval_set, _model_config(model, backend, base_url, batch_size), out,
                          data_root=resolve_data_root(data_root), label=label, force=force)
    info = res.info
    typer.echo(f"{info.label}: {info.n_answered} of {info.n_answered + info.n_failed} questions answered by "
               f"{info.model.name_or_path} -> {res.out}")
    if res.call_errors:
        typer.secho(f"{res.call_errors} call(s) failed on the network: run the same command again to retry them",
                    fg="yellow", err=True)


def _print_table(table: Any, result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from videosavi.curation.eval_table import TOTAL

    out = Table(title=f"errors found by {result.info.judge.name_or_path} (eval set {result.info.set_id})")
    out.add_column("error type", style="bold")
    for i, label in enumerate(table.labels):
        out.add_column(f"{label}\ncrit/minor" if table.rated else label, justify="right")
        if i:
            out.add_column("change", justify="right", style="dim")
    for row in [*table.rows, table.total]:
        cells = [row.error_type.replace("_", " ")]
        for i, label in enumerate(table.labels):
            c = row.cells[label]
            cells.append(f"{c.all} ({c.critical}/{c.minor})" if table.rated else str(c.all))
            if i:
                ch = row.change.get(label)
                cells.append("n/a" if ch is None else f"{ch * 100:+.1f}%")
        out.add_row(*cells, style="bold" if row.error_type == TOTAL else None)
    console = Console()
    console.print(out)
    for c in table.columns:
        console.print(f"{c.label}: {c.judged} of {c.questions} answers judged, {c.unjudged} unjudged (reply never "
                      f"parsed), {c.unanswered} unanswered", markup=False)


@eval_app.command("judge", cls=VocabCommand)
@friendly_errors
def judge(
    model: JudgeModel,
    out: JudgeOut,
    answer_dirs: Annotated[Optional[list[Path]], typer.Argument(
        help="Answers folders, in iteration order (the same as --answers).", show_default=False)] = None,
    answers: Annotated[Optional[list[Path]], typer.Option(
        "--answers", metavar="DIR...", help="Answers folders, in iteration order: --answers A1 A2 A3.")] = None,
    as_json: JsonOutput = False,
    data_root: DataRoot = None,
    backend: Backend = None,
    base_url: BaseUrl = None,
    batch_size: BatchSize = 8,
    max_new_tokens: Annotated[int, typer.Option(
        "--max-new-tokens", min=16, help="Token limit of one judge reply.")] = 1024,
    constrained: Annotated[bool, typer.Option(
        "--constrained/--unconstrained",
        help="Hold replies to the schema while decoding (unconstrained: parse and validate them afterwards, for "
             "servers whose strict mode rejects the schema's length limits).")] = True,
    severity: Annotated[bool, typer.Option(
        "--severity", help="Also have the judge rate each error critical or minor (not in the paper's protocol; "
                           "an extra split in the table).")] = False,
    force: Annotated[bool, typer.Option(
        "--overwrite", help="Replace judgements made in --out with another judge setup.")] = False,
) -> None:
    """Judge every answer: errors by type per answers folder, like the paper's Table 2 (--severity: rated too)."""
    import json

    from videosavi.config import resolve_data_root
    from videosavi.errors import ConfigError
    from videosavi.workflows.evaluation.eval_dir import JudgeDir
    from videosavi.workflows.evaluation.judge import judge_answers
    from videosavi.workflows.evaluation.report import write_report

    dirs = [*(answers or []), *(answer_dirs or [])]
    if not dirs:
        raise ConfigError("give the answers folders: --answers A1 A2 ...")
    result = judge_answers(dirs, _model_config(model, backend, base_url, batch_size, constrained), out,
                           data_root=resolve_data_root(data_root), max_new_tokens=max_new_tokens, force=force,
                           severity=severity)
    table = write_report(result, JudgeDir(out))
    if as_json:
        typer.echo(json.dumps({"judge": result.info.model_dump(mode="json"), "table": table.model_dump(mode="json")},
                              indent=2))
    else:
        _print_table(table, result)
        typer.echo(f"wrote {out}/table.md, table.json, errors.png and judgements.parquet")
    for note in result.notes:
        typer.secho(f"note: {note}", fg="yellow", err=True)
    if result.call_errors:
        typer.secho(f"{result.call_errors} judge call(s) failed on the network: run the same command again",
                    fg="yellow", err=True)


def register(app: typer.Typer) -> None:
    """Add the `savi eval` group to the app."""
    app.add_typer(eval_app, name="eval")

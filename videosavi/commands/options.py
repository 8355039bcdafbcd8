"""The CLI's one vocabulary: every shared option's flags and help text, written once, and the command
class that every `savi` command uses.

Words (`VOCABULARY`): `--dataset/-d ORG/NAME`, `--revision/-r REV`, `--out/-o PATH`, `--config/-c`,
`--data-root`, `--store`, `--endpoint` (`--hub`: the Hugging Face Hub itself), `--model/-m`, and
`--overwrite` (replace what the command wrote before). A short flag means one thing in every command, and
so does a long one: `--threads` (threads), `--dataloader-workers` (processes), `--batch-size` (requests
per model batch), `--per-device-batch-size` (training pairs). tests/test_cli_vocabulary.py walks the
command tree.

`VocabCommand` adds one thing to Typer's command: **lists take space-separated values.** A Typer/click
option with `multiple=True` takes one value per flag; here `--compare iter2 iter3 iter4` is read as
`--compare iter2 --compare iter3 --compare iter4` (the values run up to the next token that starts with
`-`, so put positional arguments before a list option). Repeating the flag still works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from videosavi.build_options import option_help
from videosavi.commands.dataclass_options import with_dataclass_options
from videosavi.hub_location import HubLocation, Role
from videosavi.training_options import field_help

F = TypeVar("F", bound=Callable[..., Any])

# long flag -> (short flag or None, what it names). One meaning per word and per short flag.
VOCABULARY: dict[str, tuple[str | None, str]] = {
    "--dataset": ("-d", "a dataset repository, ORG/NAME"),
    "--revision": ("-r", "a revision of that dataset: tag (iterN), branch or commit sha"),
    "--out": ("-o", "where the command writes its result"),
    "--config": ("-c", "a build config: a YAML file or a bundled name (demo, videosavi)"),
    "--data-root": (None, "the root that a config's source paths are relative to"),
    "--store": (None, "a local git store of dataset repositories"),
    "--endpoint": (None, "a Hub API URL (e.g. a `savi hub serve` URL)"),
    "--hub": (None, "the Hugging Face Hub itself"),
    "--model": ("-m", "a model: a tiny-* test model, a hub id or a local folder"),
    "--overwrite": (None, "replace what this command wrote before (nothing else)"),
}
# Other short flags, each with its single meaning.
SHORT_FLAGS: dict[str, str] = {
    **{short: long for long, (short, _) in VOCABULARY.items() if short},
    "-i": "--iteration",
    "-f": "--format",
    "-k": "--key",
}


# --- the command class ---------------------------------------------------------------------------------


def list_flags(params: Iterable[Any]) -> set[str]:
    """The flags of options that take several values."""
    return {name for p in params if getattr(p, "multiple", False) for name in p.opts}


def spread_lists(args: list[str], lists: set[str]) -> list[str]:
    """`--compare a b` -> `--compare a --compare b` for each flag in `lists`; everything else as given."""
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            out += args[i - 1:]
            break
        if token not in lists:  # `--compare=a` is one value already
            out.append(token)
            continue
        values = []
        while i < len(args) and not _is_flag(args[i]):
            values.append(args[i])
            i += 1
        out += [x for v in values for x in (token, v)] or [token]
    return out


def _is_flag(token: str) -> bool:
    return token.startswith("-") and len(token) > 1


class VocabCommand(TyperCommand):
    """A Typer command whose list options take space-separated values (see the module docstring)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_lists(args, list_flags(self.params)))


class VocabGroup(TyperGroup):
    """A group that is also a command: `savi bench` evaluates, `savi bench report` is its subcommand. Its own
    options are read as `VocabCommand` reads them (space-separated lists), up to the subcommand's name."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        cut = next((i for i, a in enumerate(args) if a in self.commands), len(args))
        return super().parse_args(ctx, spread_lists(args[:cut], list_flags(self.params)) + args[cut:])


def command(app: typer.Typer, name: str, fn: Callable[..., Any]) -> None:
    """Register `fn` as `savi NAME` with the vocabulary's command class."""
    app.command(name, cls=VocabCommand)(fn)


def announce_config(config: str | None) -> str:
    """The config a command uses: without --config, the bundled demo, said in one line on stderr (its
    sources are synthetic and its model has random weights: a real run always names its config)."""
    if config is not None:
        return config
    from videosavi.config import bundled_config

    typer.secho(f"note: no --config given: using the bundled demo config ({bundled_config('demo')}): synthetic "
                "demo sources and a random-weight model", fg="yellow", err=True)
    return "demo"




# --- where a revision is read from or published to ---------------------------------------------------


def location_options(role: Role) -> Callable[[F], F]:
    """The `--store`, `--endpoint` and `--hub` flags a command of `role` has (videosavi/hub_location.py),
    handed to it checked, as `location: HubLocation`."""
    return with_dataclass_options(HubLocation, command=role, param="location",
                                  make=lambda given: given.over(HubLocation(role=role)))


# --- the shared options -----------------------------------------------------------------------------------
# Each alias is one option's flags and help text. Where a word names something the command writes or
# uses in its own way (`--out`, `--model`), each distinct meaning has its alias here, so help texts are
# still written once and every command reads the same flags.

_D = ("--dataset", "-d")
_R = ("--revision", "-r")
_O = ("--out", "-o")
_C = ("--config", "-c")
_M = ("--model", "-m")

DATASET_HELP = "Published dataset repository, ORG/NAME."
Dataset = Annotated[str, typer.Option(*_D, metavar="ORG/NAME", help=DATASET_HELP)]
MaybeDataset = Annotated[Optional[str], typer.Option(*_D, metavar="ORG/NAME", help=DATASET_HELP)]
PublishDataset = Annotated[Optional[str], typer.Option(
    *_D, metavar="ORG/NAME", help="Publish the finished build to this dataset repository (tag iterN).")]
LoopDataset = Annotated[str, typer.Option(
    *_D, metavar="ORG/NAME", help="Dataset repository each iteration is published to (tag iterN) and trained from.")]
PublishTo = Annotated[str, typer.Option(*_D, metavar="ORG/NAME", help="Dataset repository to publish to.")]

REVISION_HELP = "Revision of --dataset: a tag (iterN), branch or commit sha."
Revision = Annotated[str, typer.Option(*_R, metavar="REV", help=REVISION_HELP)]
MaybeRevision = Annotated[Optional[str], typer.Option(*_R, metavar="REV", help=REVISION_HELP)]

CONFIG_HELP = "Build config: a YAML file, or a bundled name (demo, videosavi). Default: demo."
Config = Annotated[Optional[str], typer.Option(*_C, help=CONFIG_HELP)]
SourcesConfig = Annotated[Optional[str], typer.Option(
    *_C, help="Build config naming each source's root (and, for training, its training: defaults).")]
EvalConfig = Annotated[Optional[str], typer.Option(
    *_C, help="The build config (needs an `eval: {holdout: ...}` section). Default: demo.")]

DataRoot = Annotated[Optional[Path], typer.Option(
    "--data-root", help="Root that config paths are relative to (default $VIDEOSAVI_DATA_ROOT or cwd).")]
TrainModel = Annotated[str, typer.Option(*_M, help="Model to train: tiny-qwen2-vl, a hub id or a local folder.")]
FirstModel = Annotated[str, typer.Option(*_M, help="Model of iteration 1: tiny-qwen2-vl, a hub id or a folder.")]
CheckModel = Annotated[Optional[str], typer.Option(
    *_M, help="Model to check instead of the config's (as `savi build --model`).")]
QuestionModel = Annotated[Optional[str], typer.Option(
    *_M, help="Model that writes the questions (default: the config's, the iteration-1 model).")]
AnswerModel = Annotated[str, typer.Option(*_M, help="Model that answers: a tiny-* name, hub id or local folder.")]
JudgeModel = Annotated[str, typer.Option(*_M, help="Judge: gpt-4o with --base-url, a served or a local model.")]
SourceModel = Annotated[str, typer.Option(
    *_M, help="Original InternVL2.5/InternVL3 checkpoint: a folder, or a hub id already in the local HF cache.")]
ServeModel = Annotated[str, typer.Option(
    *_M, help="Model for vLLM to serve: a tiny-* test model, a local folder or a hub id.")]
ModelRevision = Annotated[Optional[str], typer.Option(
    "--model-revision", metavar="REV", help="Revision of a hub id --model.")]

SampleOut = Annotated[Path, typer.Option(*_O, help="Run directory to write videos.parquet into.")]
MergeOut = Annotated[Path, typer.Option(*_O, help="Run directory to write the merged result into.")]
DemoDataOut = Annotated[Path, typer.Option(
    *_O, help="Data root to write the demo sources into (created if missing).")]
TrainOut = Annotated[Path, typer.Option(*_O, help="Folder for adapter/, merged/ and train.json.")]
LoopOut = Annotated[Path, typer.Option(*_O, help="Folder for the iterN/ run directories and iterN-model/ models.")]
DemoOut = Annotated[Path, typer.Option(*_O, help="Where the demo's data, runs, store and models go.")]
ExportOut = Annotated[Path, typer.Option(*_O, help="Folder to write; must be empty or new (see --overwrite).")]
ConvertOut = Annotated[Path, typer.Option(
    *_O, help="Folder to write the native checkpoint to (written whole, or not at all).")]
EvalSetOut = Annotated[Path, typer.Option(*_O, help="Eval set folder to write.")]
AnswersOut = Annotated[Path, typer.Option(*_O, help="Answers folder to write.")]
JudgeOut = Annotated[Path, typer.Option(*_O, help="Folder for the judgements, table.json/.md and errors.png.")]
SheetOut = Annotated[Path, typer.Option(
    *_O, help="Rater sheet to write (CSV; with --format label-studio, the tasks JSON).")]
RatedSheetOut = Annotated[Optional[Path], typer.Option(
    *_O, help="The filled sheet, saved after every answer (default SHEET.RATER.csv beside --sheet); resumed if it "
              "exists.")]

VideoRoots = Annotated[Optional[list[str]], typer.Option(
    "--video-root", metavar="SOURCE=DIR",
    help="Where a source's videos are: SOURCE=DIR, one per source in the revision (e.g. --video-root "
         "star=/data/charades vidal=/data/vidal).")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress.")]
AllowGap = Annotated[bool, typer.Option(
    "--allow-gap", help="Publish iterN although iter(N-1) is not published.")]
AllowShortfall = Annotated[bool, typer.Option("--allow-shortfall", help=option_help("allow_shortfall"))]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
MaxMissingShare = Annotated[float, typer.Option("--max-missing-share", help=field_help("max_missing_share"))]
LoraTargets = Annotated[str, typer.Option("--lora-targets", help=field_help("lora_targets"))]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Requests given to the model at once (one batch).")]

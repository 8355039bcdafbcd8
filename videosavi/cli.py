"""The `savi` command line (Typer). Each command group lives in `videosavi/commands/<name>.py` and
registers itself here; this module only wires them and turns our errors into one clean line."""

from __future__ import annotations

import importlib
import sys

import typer

from videosavi.version import __version__

app = typer.Typer(
    name="savi",
    help="Build, validate, publish and train on self-aligned video preference data (VideoSAVi).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Order = order in `savi --help`.
COMMAND_MODULES = ["build", "data", "publish", "hub", "model", "train", "export", "stats", "eval", "humaneval",
                   "doctor", "demo"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"videosavi {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """videosavi command line."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"videosavi.commands.{_name}").register(app)

build_app = typer.Typer(
    name="savi-build",
    help="Build one iteration of preference pairs (the same as `savi build`).",
    pretty_exceptions_enable=False,
    add_completion=False,
)
build_app.command()(importlib.import_module("videosavi.commands.build").build)


def run() -> None:  # pragma: no cover - console entry for `python -m videosavi`
    from videosavi.errors import VideosaviError

    try:
        app()
    except VideosaviError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)

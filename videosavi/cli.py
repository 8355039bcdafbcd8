"""The `savi` command line (Typer). Each command group lives in `videosavi/commands/<name>.py` and
registers itself here; this module only wires them and turns our errors into one clean line."""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

import typer

from videosavi.commands.options import VocabCommand
from videosavi.logs import LEVEL_ENV, LEVELS, configure_logging
from videosavi.version import __version__

app = typer.Typer(
    name="savi",
    help="Build, validate, publish and train on self-aligned video preference data (VideoSAVi).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Order = order in `savi --help`.
COMMAND_MODULES = ["build", "data", "publish", "hub", "model", "train", "export", "stats", "eval", "bench",
                   "humaneval", "doctor", "demo"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"videosavi {__version__}")
        raise typer.Exit()


def _log_level(value: str) -> str:
    from videosavi.errors import ConfigError

    try:
        configure_logging(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    log_level: str = typer.Option(
        "warning", "--log-level", envvar=LEVEL_ENV, callback=_log_level,
        help=f"Console log level: {', '.join(LEVELS)}. A build's RUN/build.log records info and up regardless.",
    ),
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
_build = importlib.import_module("videosavi.commands.build")


@functools.wraps(_build.build)
def _savi_build(*args: Any, **kwargs: Any) -> Any:
    """`savi-build` has no group options: its console log level comes from $VIDEOSAVI_LOG_LEVEL."""
    configure_logging()
    return _build.build(*args, **kwargs)


build_app.command(cls=VocabCommand)(_savi_build)


def run() -> None:  # pragma: no cover - console entry for `python -m videosavi`
    from videosavi.errors import VideosaviError

    try:
        app()
    except VideosaviError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)

"""`savi demo`: the whole workflow on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from videosavi.commands._common import friendly_errors, progress_switch


@friendly_errors
def demo(
    workdir: Path = typer.Option(Path("runs/demo"), "--workdir", help="Where data, runs, store and model go."),
    train_steps: int = typer.Option(2, "--train-steps", min=1, help="DPO steps on iteration 1."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Demo videos + tiny model: build iter1, publish, serve, load, train, build iter2, export for raters."""
    from videosavi.workflows.demo import run_demo

    progress_switch(progress)
    run_demo(workdir, train_steps=train_steps)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

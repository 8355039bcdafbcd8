"""`savi demo`: the whole workflow on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from videosavi.commands._common import friendly_errors, progress_switch
from videosavi.commands.options import DemoOut, Progress, command


@friendly_errors
def demo(
    out: DemoOut = Path("runs/demo"),
    train_steps: Annotated[int, typer.Option("--train-steps", min=1, help="DPO steps on iteration 1.")] = 2,
    progress: Progress = True,
) -> None:
    """Demo videos + tiny model: build iter1, publish, serve, load, train, build iter2, export for raters."""
    from videosavi.workflows.demo import run_demo

    progress_switch(progress)
    run_demo(out, train_steps=train_steps)


def register(app: typer.Typer) -> None:
    command(app, "demo", demo)

"""`savi build` (not yet implemented)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `savi` app."""


def build() -> None:
    """Build one iteration (placeholder until the runner lands)."""
    raise typer.Exit(code=1)

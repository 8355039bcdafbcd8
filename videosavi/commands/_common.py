"""Shared CLI plumbing: turn a `VideosaviError` into one red line and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from videosavi.errors import VideosaviError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Decorate a command so user-facing errors print cleanly instead of as a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VideosaviError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(code=2) from exc

    return wrapper  # type: ignore[return-value]

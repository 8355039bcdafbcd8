"""Shared CLI plumbing: whatever ends a command ends it with one line, never a traceback.

Our own errors (`VideosaviError`) and the operating system's (`OSError`: a path that is a file, a
read-only folder, a full disk) print one red line naming the path and exit 2; Ctrl-C says how to go
on and exits 130 (128 + SIGINT, as shells do). Every write of a build, merge and publish is atomic, so
after any of them the same command resumes.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, TypeVar, cast

import typer

from videosavi.errors import ConfigError, VideosaviError
from videosavi.progress import disable_progress_bars

F = TypeVar("F", bound=Callable[..., Any])
INTERRUPTED = "interrupted; run the same command to resume"
EXIT_INTERRUPTED = 130

# What each common errno means for the user, in words (the path is added by `describe_os_error`).
_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run the same command again (finished work is kept)",
    errno.EDQUOT: "the disk quota is exhausted: free some space and run the same command again",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.EACCES: "permission denied: choose a location you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a location you can write to, or fix its permissions",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "this is a folder, but a file is needed here",
    errno.EEXIST: "this already exists and is not a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the path is too long",
}


def describe_os_error(exc: OSError) -> str:
    """`PATH: what it means` for an OSError (its own text when it names no path)."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if not paths:
        return str(exc) or type(exc).__name__
    meaning = _HINTS.get(exc.errno or -1) or (exc.strerror or type(exc).__name__).lower()
    return f"{' -> '.join(paths)}: {meaning}"


def progress_switch(enabled: bool) -> None:
    """`--progress/--no-progress`: the command line's front end of the one progress switch
    (`videosavi.progress`); `--progress`, the default, leaves it to `VIDEOSAVI_NO_PROGRESS`."""
    if not enabled:
        disable_progress_bars()


def check_utf8_arguments(kwargs: dict[str, Any]) -> None:
    """Refuse, naming the option, an argument that is not UTF-8 (a folder name in Latin-1, say): Python
    carries its bytes as surrogates, and the first JSON record or log line naming it would fail deep
    inside the command. Paths we write into records and cards must be text."""
    for name, value in kwargs.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, (str, PurePath)):
                continue
            try:
                str(item).encode("utf-8")
            except UnicodeEncodeError as exc:
                shown = str(item).encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                raise ConfigError(f"--{name.replace('_', '-')} {shown[:200]} is not UTF-8 text (byte {exc.start}); "
                                  "give a name in UTF-8 (rename the folder, or choose another)") from None


def friendly_errors(fn: F) -> F:
    """Decorate a command so user-facing errors print as one clean line instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_utf8_arguments(kwargs)
            return fn(*args, **kwargs)
        except VideosaviError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(code=2) from exc
        except KeyboardInterrupt:
            typer.secho(INTERRUPTED, fg="yellow", err=True)
            raise typer.Exit(code=EXIT_INTERRUPTED) from None
        except OSError as exc:
            typer.secho(f"error: {describe_os_error(exc)}", fg="red", err=True)
            raise typer.Exit(code=2) from exc

    return cast(F, wrapper)  # functools.wraps keeps the signature Typer reads

"""One switch for every progress bar and spinner videosavi draws, as `datasets` has one for its own.

Bars are for a person watching a terminal; the record of a run is its log (`videosavi.logs`). They are
on unless `VIDEOSAVI_NO_PROGRESS` is set (to anything but `0`/`false`/`no`), `disable_progress_bars()`
was called, or a command got `--no-progress` (the switch's front end). No function takes a `progress`
flag: each bar asks `progress_bars_enabled()` when it starts, so a worker process started with the
variable set stays quiet, and a library user turns every bar off with one call.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn

ENV = "VIDEOSAVI_NO_PROGRESS"
_FALSE = {"", "0", "false", "no", "off"}

_override: bool | None = None  # set by enable/disable; None: the environment decides


def disable_progress_bars() -> None:
    """Turn every bar and spinner off in this process."""
    global _override
    _override = False


def enable_progress_bars() -> None:
    """Turn them back on in this process (over `VIDEOSAVI_NO_PROGRESS` too)."""
    global _override
    _override = True


def progress_bars_enabled() -> bool:
    if _override is not None:
        return _override
    return os.environ.get(ENV, "").strip().lower() in _FALSE


def progress_bar(*columns: str | ProgressColumn, transient: bool = False, console: Console | None = None) -> Progress:
    """A rich `Progress` (default columns when none are given) that draws only while the switch is on;
    switched off it takes every call and draws nothing."""
    from rich.progress import Progress

    return Progress(*columns, transient=transient, console=console, disable=not progress_bars_enabled())


def status_console() -> Console:
    """A console on stderr for spinners and one-line notes about progress, silent while the switch is off."""
    from rich.console import Console

    return Console(stderr=True, quiet=not progress_bars_enabled())

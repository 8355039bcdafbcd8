"""Logging: one level for the console (`savi --log-level`), and a log file in each run directory.

Every module logs through `logging.getLogger(__name__)`, so all records pass the `videosavi` logger.
A message is an event name and `key=value` fields (`event()`), one line per event, so the log of a
build that runs for days can be read by a person and filtered by a script:

    2026-12-01T04:05:06Z INFO videosavi.builders.run.runner video_done seq=12 video=star/6H78U pairs=6

`run_log(RUN)` appends the records of INFO and above to `RUN/build.log` while a build runs: its
start and resumption, each stage's calls, retries and quarantines, skipped and pending videos,
reserve top-ups and the finished counts. The console shows WARNING and above unless asked for more
(`--log-level`, or `VIDEOSAVI_LOG_LEVEL` where there is no option, as for `savi-build`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from videosavi.errors import ConfigError

LOGGER = "videosavi"
LEVEL_ENV = "VIDEOSAVI_LOG_LEVEL"
LEVELS = ("debug", "info", "warning", "error")
BUILD_LOG = "build.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def event(name: str, **fields: object) -> str:
    """`name key=value ...`: a string with a space, quote or `=` (or an empty one) is JSON-quoted, any
    other value is compact JSON (`n=3`, `ok=true`, `by_source={"star":4}`)."""
    parts = [name]
    for key, value in fields.items():
        if isinstance(value, str):
            text = json.dumps(value, ensure_ascii=False) if not value or any(c in value for c in ' "=\n\t') else value
        else:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
        parts.append(f"{key}={text}")
    return " ".join(parts)


class _UTCFormatter(logging.Formatter):
    """ISO 8601 UTC times, so the logs of machines in different zones line up."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is when the record comes (a test runner may have swapped it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def parse_level(level: str | int | None) -> int:
    """A level name (`debug`, `info`, `warning`, `error`, any case) or number; None: $VIDEOSAVI_LOG_LEVEL,
    else WARNING. An unknown name is a `ConfigError` naming the choices."""
    if level is None:
        level = os.environ.get(LEVEL_ENV) or "warning"
    if isinstance(level, int):
        return level
    name = level.strip().lower()
    if name not in LEVELS:
        raise ConfigError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    return int(getattr(logging, name.upper()))


def configure_logging(level: str | int | None = None) -> None:
    """The command line's console log: records of `level` and above from `videosavi` on stderr.

    Calling it again replaces the level (one handler, never a second)."""
    number = parse_level(level)
    logger = logging.getLogger(LOGGER)
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_UTCFormatter(_FORMAT))
        logger.addHandler(handler)
    handler.setLevel(number)
    _lower_to(logger, number)


@contextmanager
def run_log(run_dir: str | Path, name: str = BUILD_LOG) -> Iterator[Path]:
    """Append `videosavi`'s records of INFO and above (DEBUG too when the console asks for them) to
    `run_dir/name` while the block runs. Appending keeps the history of every resumed attempt; a nested
    `run_log` of the same file adds nothing."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER)
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in logger.handlers):
        yield path  # already written to (a merge inside a Ray build): one copy of each line
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_UTCFormatter(_FORMAT))
    handler.setLevel(min(logging.INFO, logger.getEffectiveLevel()))
    previous = logger.level
    _lower_to(logger, logging.INFO)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(previous)


def _lower_to(logger: logging.Logger, level: int) -> None:
    """Let records of `level` through the logger (handlers keep their own levels)."""
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)

"""Temporary working folders that a killed process cannot leave behind for good.

Publishing stages a full copy of a revision (the data included) in a temporary folder, and the hub
server keeps its blob cache in one. `kill -9` skips every `finally`, so those copies would pile up in the temp
directory. Each folder's name carries its owner's pid (`videosavi-<kind>-<pid>-<random>`); the next
command of any such kind removes the folders whose owner is gone. A live owner's folder is never
touched, and neither is anything without the prefix.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from videosavi.locking import pid_alive

KINDS = ("stage", "publish", "hub")
_NAME = re.compile(r"^videosavi-(?P<kind>[a-z]+)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def owned_tmpdir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A `TemporaryDirectory` named for its kind and this process (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown temporary folder kind {kind!r}; add it to KINDS")
    clean_stale()
    return tempfile.TemporaryDirectory(prefix=f"videosavi-{kind}-{os.getpid()}-")


def stale_dirs(base: Path | None = None) -> list[Path]:
    """Our temporary folders under `base` (the temp dir) whose owning process is no longer running."""
    base = Path(base or tempfile.gettempdir())
    found = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return []
    for p in entries:
        m = _NAME.match(p.name)
        if m and m["kind"] in KINDS and int(m["pid"]) != os.getpid() and not pid_alive(int(m["pid"])) \
                and p.is_dir() and not p.is_symlink():
            found.append(p)
    return found


def clean_stale(base: Path | None = None) -> list[Path]:
    """Remove the folders `stale_dirs` finds; returns what was removed (best effort, never raises)."""
    removed = []
    for p in stale_dirs(base):
        shutil.rmtree(p, ignore_errors=True)
        if not p.exists():
            removed.append(p)
    return removed

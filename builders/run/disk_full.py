"""Turn "no space left on device" (from a file write or from SQLite) into one actionable error.

A days-long build is most likely to die of a full disk, and the raw `OSError` from deep inside a
parquet write names neither the disk nor what to do. Every write of a build is atomic (temp file,
then rename; one SQLite transaction per batch), so nothing finished is lost: the user only has to
free space and run the same command again.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from videosavi.errors import DiskFullError

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


# How libraries that do not raise OSError say the same: safetensors' SafetensorError carries the Rust
# io::Error's Debug form (`IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })`),
# torch's RuntimeError the C library's text.
_FULL_TEXTS = ("No space left on device", "StorageFull", "Disk quota exceeded", "QuotaExceeded", "os error 28",
               "code: 28,", "os error 122", "code: 122,")


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    # SQLite reports SQLITE_FULL as an OperationalError whose text is fixed by the library.
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc)
    return type(exc).__name__ in ("SafetensorError", "RuntimeError") and any(t in str(exc) for t in _FULL_TEXTS)


def mount_point(path: Path) -> Path:
    """The mount point of the file system that holds `path` (or would, once created)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def disk_full_error(exc: BaseException, run_dir: Path,
                    kept: str = "Finished videos are kept") -> DiskFullError | None:
    """The user-facing error for a full disk under `run_dir`, or None if `exc` is something else.
    `kept` says what survives (a build's finished videos, a training run's saved checkpoints)."""
    if not is_disk_full(exc):
        return None
    mount = mount_point(run_dir)
    try:
        free = f"{shutil.disk_usage(mount).free / 2**20:.1f} MiB free now"
    except OSError:
        free = "free space unknown"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).splitlines() or [""])[0][:200]
    return DiskFullError(
        f"the disk holding {run_dir} (file system at {mount}, {free}) is full: {detail}. {kept}; free some space "
        "there, then run the same command again to resume."
    )

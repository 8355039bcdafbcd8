"""One writer at a time: an exclusive lock on a run directory (or a store repository) for the life of a
command, and a holder record that lets a refused second command say who holds it.

Without it two `savi-build`s into one run directory both exit 0 and leave a mix of two runs behind,
which a later publish ships. The lock is `filelock.FileLock` (what huggingface_hub and datasets lock
their caches with): an `flock` on a lock file, which the kernel releases when its process ends, `kill
-9` included, so a lock left by a dead process is never an obstacle and needs no clean-up; the next
command simply takes it. The holder record (pid, host, start time, command line) is a JSON file beside
the lock file, written by each new holder; it serves only the refusal message, never the decision.

The lock is re-entrant within one process, across threads (the Ray driver holds `OUT` and then merges
into it): one `FileLock` per lock file (`is_singleton`) with a shared counter (`thread_local=False`).
It is never shared between processes: each shard of a Ray build locks its own `OUT/shards/shard-I`.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from videosavi.errors import LockedError

LOCK_FILE = ".videosavi.lock"  # the holder record sits beside it, as `<lock file>.json`


def holder_record(what: str) -> dict[str, Any]:
    """Who holds a lock, as the refusal message will name it."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "what": what,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else "",
    }


def pid_alive(pid: int) -> bool:
    """Is a process with this id running on this host (a zombie counts as gone)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def describe_holder(record: dict[str, Any] | None) -> str:
    """`savi-build (pid 123 on host, since 2025-01-01T10:00:00+00:00)`; honest when nothing is known."""
    if not record:
        return "another process (it left no holder record yet)"
    what = record.get("what") or "another command"
    where = f"pid {record.get('pid', '?')} on {record.get('host', '?')}"
    text = f"{what} ({where}, since {record.get('started', '?')})"
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int) \
            and not pid_alive(record["pid"]):
        text += "; that pid is gone, so a child process it started still holds the lock"
    return text


def read_holder(folder: Path, name: str = LOCK_FILE) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(folder) / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def exclusive(folder: str | Path, what: str, *, name: str = LOCK_FILE, read_only_ok: bool = False,
              wait_s: float = 0.0) -> Iterator[Path]:
    """Hold `folder`'s lock for the block (creating the folder); `LockedError` names the live holder.

    `what` names the holder in a refusal message (e.g. `savi-build`, `savi publish`); `name` is the
    lock file's name in `folder` (a store locks each repository by its own file in the org folder).
    A command that only reads `folder` passes `read_only_ok`: where no lock file can be created (a
    read-only mount, someone else's folder) no build of ours can write either, so it goes on unlocked.
    `wait_s` > 0 waits that long for a holder to finish before refusing (publishes to one store queue
    up this way: each takes seconds, and the second must see the first one's result).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / name, thread_local=False, is_singleton=True)
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise LockedError(
            f"{folder} is in use by {describe_holder(read_holder(folder, name))}: wait for it to finish "
            "(or stop it), then run this command again"
        ) from None
    except OSError as exc:  # the lock file cannot be created or opened: no holder to blame
        if read_only_ok and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            yield folder
            return
        raise
    try:
        if lock.lock_counter == 1:  # this process's first hold: say who holds it now
            tmp = folder / f"{name}.json.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(holder_record(what), sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, folder / f"{name}.json")
        yield folder
    finally:
        lock.release()

"""One writer at a time: an exclusive lock on a run directory (or a store repository) for the life of a
command, and a holder record that lets a refused second command say who holds it.

Without it two `savi-build`s into one run directory both exit 0 and leave a mix of two runs behind,
which a later publish ships. The lock is `fcntl.flock` on a lock file: the kernel releases it when
its process ends, `kill -9` included, so a lock left by a dead process is never an obstacle and
needs no clean-up; the next command simply takes it. The holder record (pid, host, start time,
command line) is a JSON file beside the lock file, written by each new holder; it serves only the
refusal message, never the decision. (The `filelock` package wraps the same call, but reports a lock
file it cannot create as "could not be acquired", which would make the message blame a holder that
does not exist.)

The lock is re-entrant within one process (the Ray driver holds `OUT` and then merges into it), and
never shared between processes: each shard of a Ray build locks its own `OUT/shards/shard-I`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from videosavi.errors import LockedError

LOCK_FILE = ".videosavi.lock"  # the holder record sits beside it, as `<lock file>.json`
_HELD: dict[str, list[int]] = {}  # lock file -> [descriptor, depth] of the locks this process holds
_HELD_GUARD = threading.Lock()


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


def _flock_within(fd: int, wait_s: float) -> None:
    """Take the flock, retrying for up to `wait_s` seconds; the last attempt's OSError propagates."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


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
    path = str((folder / name).resolve())
    with _HELD_GUARD:
        held = _HELD.get(path)
        if held is not None:  # re-entry from this process
            held[1] += 1
    if held is None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if read_only_ok and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                yield folder
                return
            raise
        try:
            _flock_within(fd, wait_s)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise LockedError(
                f"{folder} is in use by {describe_holder(read_holder(folder, name))}: wait for it to finish "
                "(or stop it), then run this command again"
            ) from None
        with _HELD_GUARD:
            _HELD[path] = [fd, 1]
        tmp = folder / f"{name}.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(holder_record(what), sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, folder / f"{name}.json")
    try:
        yield folder
    finally:
        with _HELD_GUARD:
            entry = _HELD[path]
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[path]
                os.close(entry[0])  # closing the descriptor releases the flock

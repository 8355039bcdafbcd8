"""Failpoints for fault-injection tests (as databases have): crash or fill the disk at a named point.

Set `VIDEOSAVI_FAULT=<point>:<n>[:<action>]` to act on the n-th time `<point>` is reached in this
process; action `kill` (default: SIGKILL, no cleanup, like a machine losing power), `enospc` (an
`OSError(ENOSPC)` as from a full disk) or `sigint` (SIGINT, as from Ctrl-C at that very point).
Unset, a failpoint costs one dictionary lookup.

With `VIDEOSAVI_FAULT_ONCE=<marker file>` as well, the fault fires only if it can create that file
first (atomically), so it strikes once across processes: a retried Ray task or a resumed build runs
past the same point unharmed, and the marker tells a test that the fault really happened.

Points: `model_batch` (after a batch of model results is committed to the cache), `part_written`
(after a video's part file, before it is marked done), `shard_written` (while finalising shards),
`part_write` (inside the part write itself; use with `enospc`), `publish_committed` (after a
publish commit, before its tag), `train_save` (before a training run saves its adapter), and the
step boundaries of `savi loop`: `loop_built`, `loop_published`, `loop_trained`.
"""

from __future__ import annotations

import errno
import os
import signal

FAULT_ENV = "VIDEOSAVI_FAULT"
ONCE_ENV = "VIDEOSAVI_FAULT_ONCE"

_hits: dict[str, int] = {}


def failpoint(point: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, _, rest = spec.partition(":")
    if name != point:
        return
    count_text, _, action = rest.partition(":")
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] != int(count_text or 1):
        return
    if not _claim_once(os.environ.get(ONCE_ENV)):
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {point})")
    os.kill(os.getpid(), signal.SIGINT if action == "sigint" else signal.SIGKILL)


def _claim_once(marker: str | None) -> bool:
    """True if the fault may fire: no marker asked for, or this process created it just now."""
    if not marker:
        return True
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    return True

"""Failpoints for fault-injection tests (as databases have): crash or fill the disk at a named point.

Set `VIDEOSAVI_FAULT=<point>:<n>[:<action>]` to act on the n-th time `<point>` is reached in this
process; action `kill` (default: SIGKILL, no cleanup, like a machine losing power) or `enospc` (an
`OSError(ENOSPC)` as from a full disk). Unset, a failpoint costs one dictionary lookup.

Points: `model_batch` (after a batch of model results is committed to the cache), `part_written`
(after a video's part file, before it is marked done), `shard_written` (while finalising shards),
`part_write` (inside the part write itself; use with `enospc`), `publish_committed` (after a
publish commit, before its tag).
"""

from __future__ import annotations

import errno
import os
import signal

_hits: dict[str, int] = {}


def failpoint(point: str) -> None:
    spec = os.environ.get("VIDEOSAVI_FAULT")
    if not spec:
        return
    name, _, rest = spec.partition(":")
    if name != point:
        return
    count_text, _, action = rest.partition(":")
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] != int(count_text or 1):
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {point})")
    os.kill(os.getpid(), signal.SIGKILL)

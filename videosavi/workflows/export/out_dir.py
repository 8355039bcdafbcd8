"""Write an export into a staging folder beside OUT and move it into place only when it is complete.

A failed or interrupted export never leaves a half-written OUT: the staging folder is removed, and
an OUT that existed before (replaced only with `overwrite`, and only if `savi export` wrote it:
videosavi/out_guard.py) is untouched until the final rename. Staging sits in OUT's parent so the
rename stays on one file system.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from videosavi.errors import ExportError
from videosavi.out_guard import check_replaceable, replace_folder

COMMAND = "savi export"
# What an export writes at OUT's top level (an export made before markers is recognised by export.json).
ENTRIES = frozenset({"train.jsonl", "dataset_info.json", "clips", "frames", "skipped.jsonl", "pair_ids.txt",
                     "export.json"})


def check_out(out: Path, *, overwrite: bool) -> Path:
    """OUT as an absolute path; refused when it holds something and `overwrite` is off, is a file, or
    holds anything an earlier `savi export` did not write."""
    out = Path(out).expanduser().absolute()
    check_replaceable(out, COMMAND, force=overwrite, flag="--overwrite", owned=ENTRIES, legacy="export.json")
    return out


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A fresh folder beside `out` to write into; on success the caller calls `commit`, else it is removed."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    except OSError as exc:
        raise ExportError(f"cannot write --out {out}: {exc.strerror or exc}") from exc
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit(tmp: Path, out: Path) -> None:
    """Move the finished export to `out`, replacing the earlier export there (checked by `check_out`)."""
    replace_folder(tmp, out, COMMAND)

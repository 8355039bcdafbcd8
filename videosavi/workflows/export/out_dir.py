"""Write an export into a staging folder beside OUT and move it into place only when it is complete.

A failed or interrupted export never leaves a half-written OUT: the staging folder is removed, and
an OUT that existed before (replaced only with `overwrite`) is untouched until the final rename.
Staging sits in OUT's parent so the rename stays on one file system.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from videosavi.errors import ExportError


def check_out(out: Path, *, overwrite: bool) -> Path:
    """OUT as an absolute path, refused when it holds something and `overwrite` is off, or is a file."""
    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ExportError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not overwrite:
            raise ExportError(f"--out {out} is not empty; choose another folder or pass --overwrite to replace it")
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
    """Move the finished export to `out`, replacing what was there (checked by `check_out`)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{tmp.name.rsplit('-', 1)[-1]}")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

"""A source's root is a boundary: its files are opened only inside it.

Rows and manifests name videos by a path relative to their source's root, and that path is checked
as text (no `..`, not absolute). Text is not enough: a symbolic link under the root may point
anywhere (`clips/a.mp4 -> /etc/passwd`), and following it would hash, decode and publish the hash of
a file the user never offered. So every path is resolved (all links followed) and must land inside
the resolved root; one that leaves it is unavailable with the reason `outside_root`. A source that
deliberately links its videos from elsewhere sets `follow_symlinks: true` in its config.

The sampler (stat and hash), the decoder workers, training, `savi eval` and `savi doctor` all go
through `source_path` or `open_source`, so there is one rule and one place that enforces it.
`open_source` also closes the gap between checking and opening: after the open it asks the kernel
which file the descriptor really is (`/proc/self/fd`), so a link swapped in meanwhile is still caught.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from videosavi.builders.decode.errors import MissingFileError, OutsideRootError, UnreadableFileError
from videosavi.schemas.paths import check_relative_posix_path

_CHUNK = 1 << 20


def _outside(path: Path, real: Path, root: Path) -> OutsideRootError:
    return OutsideRootError(
        f"the path leads outside the source root {root} (to {real}); set follow_symlinks: true on the "
        "source to allow links that leave it", str(path))


def source_path(root: str | Path, rel: str, *, follow_symlinks: bool = False) -> Path:
    """The file `rel` names under `root`: resolved, and inside the resolved root unless `follow_symlinks`.

    Raises `OutsideRootError` (a `DecodeError` with reason `outside_root`) for a path that is not a
    safe relative path or that a link carries out of the root; a missing file is not an error here.
    """
    root = Path(root)
    try:
        clean = check_relative_posix_path(rel)
    except ValueError as exc:
        raise OutsideRootError(f"not a path inside the source root: {exc}", str(root / str(rel))) from exc
    path = root / clean
    if follow_symlinks:
        return path
    real_root = root.resolve()
    real = path.resolve()
    if not real.is_relative_to(real_root):
        raise _outside(path, real, real_root)
    return real


def open_source(root: str | Path, rel: str, *, follow_symlinks: bool = False) -> int:
    """A read-only descriptor of `rel` under `root` (see `source_path`); the caller closes it.

    Missing or unopenable files raise `MissingFileError` / `UnreadableFileError`, as a stat would.
    """
    path = source_path(root, rel, follow_symlinks=follow_symlinks)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW))
    except FileNotFoundError as exc:
        raise MissingFileError("no such file", str(path)) from exc
    except OSError as exc:  # ELOOP: the last component became a link after it was resolved
        raise UnreadableFileError(f"cannot open the file ({exc.strerror or exc})", str(path)) from exc
    if not follow_symlinks:
        opened = descriptor_target(fd)
        real_root = Path(root).resolve()
        if opened is not None and not opened.is_relative_to(real_root):
            os.close(fd)
            raise _outside(path, opened, real_root)
    return fd


def descriptor_target(fd: int) -> Path | None:
    """The file a descriptor is open on, as the kernel names it (None where there is no /proc)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def descriptor_path(fd: int) -> str | None:
    """A path that opens the same file as `fd` (so a decoder reads the inode that was hashed)."""
    for base in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(base):
            return f"{base}/{fd}"
    return None


def sha256_fd(fd: int) -> str:
    """Hex sha256 of the whole file behind `fd`, read from its start (positional reads: the offset stays)."""
    h = hashlib.sha256()
    offset = 0
    while True:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            return h.hexdigest()
        h.update(chunk)
        offset += len(chunk)


def hash_source(root: str | Path, rel: str, *, follow_symlinks: bool = False) -> str:
    """sha256 of `rel` under `root`, opened through the boundary (`OSError`s of the read propagate)."""
    fd = open_source(root, rel, follow_symlinks=follow_symlinks)
    try:
        return sha256_fd(fd)
    finally:
        os.close(fd)

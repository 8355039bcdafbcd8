"""The exact set of files one revision holds, with the digests both backends compare against.

Publishing is decided by content, not by timestamps: the git blob id (what git trees and the Hub
list for small files) and the sha256 (what the Hub lists for LFS/xet files) of every file let a
backend tell "identical to the tag" from "different" without downloading anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from videosavi.errors import PublishError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StagedFile:
    path: str  # POSIX path inside the repository
    local: Path
    size: int
    git_sha1: str
    sha256: str


def _digests(path: Path) -> tuple[int, str, str]:
    size = path.stat().st_size
    git = hashlib.sha1(f"blob {size}\0".encode())
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            git.update(chunk)
            sha.update(chunk)
    return size, git.hexdigest(), sha.hexdigest()


def scan(root: Path) -> list[StagedFile]:
    """Every regular file under `root`, sorted by repository path, with its digests."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            raise PublishError(f"refusing to publish a symlink: {p}")
        if p.is_file():
            size, git_sha1, sha256 = _digests(p)
            out.append(StagedFile(p.relative_to(root).as_posix(), p, size, git_sha1, sha256))
    return out

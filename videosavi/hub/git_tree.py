"""What the hub server reads from a bare repository: tree entries, commits and blob bytes.

Every lookup is one `git` call on exact object names (`<commit>:<path>`, never a
pathspec or a rev expression), sizes come from git's object headers, and file bytes are written
once per blob to a content-addressed cache so byte ranges can be served by seeking in a plain file.
Commits and blobs are immutable, so what is read for a commit sha or a blob id is cached for good.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Literal

from videosavi.errors import HubError
from videosavi.hub.git import git_env, git_out, run_git

Kind = Literal["file", "directory"]


@dataclass(frozen=True)
class TreeEntry:
    """One file or folder of a commit, as the Hub's tree and paths-info routes list it."""

    path: str
    kind: Kind
    oid: str  # git blob id (file) or tree id (folder)
    size: int  # bytes for a file, 0 for a folder


@dataclass(frozen=True)
class LastCommit:
    id: str
    title: str
    date: str  # ISO 8601 UTC with milliseconds, as the Hub writes it


@dataclass(frozen=True)
class CommitInfo:
    """One commit as the Hub's commit listing describes it."""

    id: str
    author: str
    title: str  # the first line of the message
    message: str  # the rest of it, stripped
    date: str  # committer date, ISO 8601 UTC with milliseconds


def hub_date(stamp: str | int) -> str:
    """A Unix time as the Hub writes dates (`2024-05-01T12:00:00.000Z`)."""
    return datetime.fromtimestamp(int(stamp or 0), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# git log records: fields split by 0x1f, records ended by 0x1e (neither can appear in a message we wrote,
# and a message that holds them only garbles its own title)
_LOG_FORMAT = "%H%x1f%an%x1f%ct%x1f%B%x1e"


def safe_repo_path(path: str) -> bool:
    """A path git reads literally inside a tree: no `.`/`..` or empty segments, no control bytes.

    `<commit>:./x` would be resolved against git's working directory and `..` could name a parent
    tree, so such paths are simply not entries of the repository.
    """
    if not path or path.startswith("/") or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


class GitTree:
    """Read-only views of the commits of one bare repository (one instance per repository)."""

    def __init__(self, bare: Path) -> None:
        self.bare = bare
        # Bound methods cached per instance: results for a (commit sha, path) never change.
        self.lookup = lru_cache(maxsize=4096)(self._lookup)
        self.list_dir = lru_cache(maxsize=256)(self._list_dir)
        self.last_commit = lru_cache(maxsize=4096)(self._last_commit)
        self.commit_dates = lru_cache(maxsize=1024)(self._commit_dates)
        self.blob_bytes = lru_cache(maxsize=64)(self._blob_bytes)

    def _lookup(self, commit: str, path: str) -> TreeEntry | None:
        """The entry at `path` in `commit` (a full sha), or None when there is none."""
        if not safe_repo_path(path):
            return None
        proc = run_git(["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"], git_dir=self.bare,
                       input_bytes=f"{commit}:{path}\n".encode(), check=False, error=HubError)
        fields = proc.stdout.decode("utf-8", "replace").split()
        if proc.returncode != 0 or len(fields) != 3 or fields[1] not in ("blob", "tree"):
            return None
        oid, otype, size = fields
        return TreeEntry(path, "file" if otype == "blob" else "directory", oid, int(size) if otype == "blob" else 0)

    def _list_dir(self, commit: str, path: str, recursive: bool) -> tuple[TreeEntry, ...] | None:
        """Entries under folder `path` ("" = the root); None when `path` is not a folder of `commit`."""
        if path:
            entry = self.lookup(commit, path)
            if entry is None or entry.kind != "directory":
                return None
        treeish = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
        args = ["ls-tree", "-z", "--format=%(objecttype) %(objectname) %(objectsize)%x09%(path)"]
        if recursive:
            args += ["-r", "-t"]  # -t: list the folders themselves too, as the Hub's recursive listing does
        out = run_git([*args, treeish], git_dir=self.bare, error=HubError, what="git ls-tree").stdout
        prefix = f"{path}/" if path else ""
        entries = []
        for record in out.decode("utf-8").split("\0"):
            if not record:
                continue
            meta, name = record.split("\t", 1)
            otype, oid, size = meta.split(" ")
            if otype not in ("blob", "tree"):
                continue  # submodules are not Hub entries
            is_file = otype == "blob"
            entries.append(TreeEntry(prefix + name, "file" if is_file else "directory", oid,
                                     int(size) if is_file else 0))
        return tuple(entries)

    def _last_commit(self, commit: str, path: str) -> LastCommit:
        """The newest commit at or before `commit` that changed `path` (for `expand=true` listings)."""
        out = git_out(["--literal-pathspecs", "log", "-1", "--format=%H%x00%ct%x00%s", commit, "--", path],
                      git_dir=self.bare, error=HubError, what="git log")
        sha, stamp, title = [*out.split("\0"), "", "", ""][:3]
        return LastCommit(sha or commit, title, hub_date(stamp))

    def commits(self, commit: str, skip: int, limit: int) -> tuple[list[CommitInfo], bool]:
        """Commits reachable from `commit`, newest first, from `skip` on: (up to `limit` of them, more left)."""
        out = run_git(["log", f"--skip={skip}", f"--max-count={limit + 1}", f"--format={_LOG_FORMAT}", commit],
                      git_dir=self.bare, error=HubError, what="git log").stdout.decode("utf-8", "replace")
        found = []
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) != 4:
                continue
            sha, author, stamp, body = fields
            title, _, message = body.strip().partition("\n")
            found.append(CommitInfo(sha, author, title.strip(), message.strip(), hub_date(stamp)))
        return found[:limit], len(found) > limit

    def _commit_dates(self, commit: str) -> tuple[str, str]:
        """(date of the oldest root commit behind `commit`, date of `commit`): the Hub's createdAt, lastModified."""
        out = git_out(["log", "--format=%ct", "--max-parents=0", commit], git_dir=self.bare, error=HubError,
                      what="git log")
        roots = [int(x) for x in out.split()] or [0]
        last = git_out(["log", "-1", "--format=%ct", commit], git_dir=self.bare, error=HubError, what="git log")
        return hub_date(min(roots)), hub_date(last or 0)

    def _blob_bytes(self, oid: str) -> bytes:
        """A small blob's bytes (the README for the card data); cached, since a blob id names its content."""
        return run_git(["cat-file", "blob", oid], git_dir=self.bare, error=HubError, what="git cat-file").stdout

    def blob_file(self, oid: str, cache: Path) -> Path:
        """`cache/<oid>`, holding the blob's bytes (written once, atomically, streamed from git)."""
        final = cache / oid
        if final.is_file():
            return final
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{oid[:12]}-", dir=cache)
        try:
            with os.fdopen(fd, "wb") as out:
                proc = subprocess.run(["git", f"--git-dir={self.bare}", "cat-file", "blob", oid], stdout=out,
                                      stderr=subprocess.PIPE, env=git_env(), check=False)
            if proc.returncode != 0:
                raise HubError(f"git cat-file blob {oid} failed in {self.bare}: "
                               f"{proc.stderr.decode('utf-8', 'replace').strip()}")
            os.replace(tmp, final)  # another request may have written the same blob: identical bytes
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return final

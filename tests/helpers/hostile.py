"""A hostile publisher: revisions committed straight into a store, with whatever files and rows it likes.

`savi publish` validates what it commits; anyone with write access to a store (or a Hub repository)
need not. These helpers take a published revision's files, change them (a row's field, build.json,
a template, a link in place of a file) and commit the result under a new tag with the store's own
git plumbing, no validation, as such a publisher would. Readers must survive what comes out.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.helpers.factories import pairs_on_real_videos, write_run_dir
from videosavi.hub.publish import publish_run
from videosavi.hub.store import GitStore
from videosavi.schemas.messages import assistant_message
from videosavi.schemas.published import TEXT_COLUMNS

REPO = "org/hostile"
SOURCES = ("star", "vidal", "webvid")
SHARD = "data/train-00000-of-00001.parquet"


@dataclass
class Store:
    """A store holding one honest revision (`iter1`) of `REPO`, and the video roots its rows point at."""

    base: Path
    store: Path
    roots: dict[str, Path]
    sha: str


def honest_store(base: Path) -> Store:
    """Two pairs on each of three real videos (the STAR ones about a clip), published by `savi publish`."""
    roots, pairs = pairs_on_real_videos(base, SOURCES)
    run = write_run_dir(base / "run", pairs)
    res = publish_run(run.path, REPO, store=base / "store")
    return Store(base=base, store=base / "store", roots=roots, sha=res.commit_sha)


def revision_files(store: Path, dest: Path, tag: str = "iter1") -> Path:
    """The files of `tag` in a fresh folder, to be changed and committed again."""
    shutil.rmtree(dest, ignore_errors=True)
    git = GitStore(store)
    git.export(REPO, git.resolve(REPO, tag), dest)
    return dest


def commit(store: Path, files: Path, tag: str) -> str:
    """Commit exactly the files under `files` (links included, as git stores them) as `tag`: no checks."""
    return GitStore(store).publish(REPO, tag, files, force=True, message=f"crafted {tag}", tag_message=tag).commit_sha


def change_rows(files: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Rewrite the default config's shard with `change` applied to its rows (the schema kept, so the
    card's features still load it). `change` may set `chosen`/`rejected` to a text, as in the record."""
    table = pq.read_table(files / SHARD)
    rows = table.to_pylist()
    change(rows)
    for row in rows:  # a text answer goes where the published layout keeps it, and as the one assistant turn
        for side, text_column in TEXT_COLUMNS.items():
            if isinstance(row.get(side), str):
                row[text_column] = row[side]
                row[side] = [assistant_message(row[side]).model_dump()]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), files / SHARD)


def craft(store: Path, work: Path, tag: str, *, rows: Callable[[list[dict[str, Any]]], None] | None = None,
          files: dict[str, bytes | str | None] | None = None, links: dict[str, str] | None = None) -> str:
    """`iter1` with its rows changed, files replaced (None: removed), or files turned into links to
    `links[path]`, committed as `tag`; returns the commit."""
    folder = revision_files(store, work / tag)
    if rows is not None:
        change_rows(folder, rows)
    for rel, content in (files or {}).items():
        path = folder / rel
        if content is None:
            path.unlink(missing_ok=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    for rel, target in (links or {}).items():
        (folder / rel).unlink(missing_ok=True)
        (folder / rel).symlink_to(target)
    return commit(store, folder, tag)

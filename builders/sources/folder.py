"""A plain folder of videos: every file under the root with a video extension, in sorted order.

The id and the path are both the file's POSIX path relative to the root (`local/clips/a.mp4` style
uids); hidden files and folders (names starting with '.') are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from videosavi.builders.sources.base import finish
from videosavi.errors import ManifestError


def list_videos(root: Path, extensions: list[str]) -> list[str]:
    if not root.is_dir():
        raise ManifestError(f"video folder not found: {root}")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).as_posix()
        for name in sorted(filenames):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                found.append(name if rel == "." else f"{rel}/{name}")
    return found


def read_folder(root: Path, source: str, extensions: list[str]) -> pl.LazyFrame:
    files = list_videos(root, extensions)
    frame = pl.LazyFrame({"video_id": files, "relpath": files}, schema={"video_id": pl.String, "relpath": pl.String})
    return finish(frame, source, "{relpath}")

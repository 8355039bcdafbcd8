"""A plain folder of videos: every file under the root with a video extension, in sorted order.

The id and the path are both the file's POSIX path relative to the root (`local/clips/a.mp4` style
uids); hidden files and folders (names starting with '.') are skipped, and a name that is not UTF-8
becomes a rejected row (`bad_filename`) instead of stopping the build.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from videosavi.builders.sources.base import finish
from videosavi.errors import ManifestError

BAD_FILENAME = "bad_filename"


def _utf8(name: str) -> bool:
    """False for a name whose bytes are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def list_videos(root: Path, extensions: list[str]) -> tuple[list[str], list[str]]:
    """(video paths relative to root, names that are not UTF-8, shown with U+FFFD for the bad bytes).

    A name that is not UTF-8 cannot travel in a row (parquet, JSON and the Hub are UTF-8), so it is
    reported and skipped, with everything under it, instead of stopping the whole listing.
    """
    if not root.is_dir():
        raise ManifestError(f"video folder not found: {root}")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found: list[str] = []
    bad: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        bad += [shown(prefix + d + "/") for d in sorted(dirnames) if not d.startswith(".") and not _utf8(d)]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and _utf8(d))
        for name in sorted(filenames):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in exts:
                continue
            if _utf8(name):
                found.append(prefix + name)
            else:
                bad.append(shown(prefix + name))
    return found, bad


def shown(name: str) -> str:
    """A file name for messages: undecodable bytes become U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


def read_folder(root: Path, source: str, extensions: list[str]) -> pl.LazyFrame:
    files, bad = list_videos(root, extensions)
    frame = pl.LazyFrame(
        {"video_id": [*files, *bad], "relpath": [*files, *bad],
         "problem_in": [None] * len(files) + [f"{BAD_FILENAME}: the name is not UTF-8"] * len(bad)},
        schema={"video_id": pl.String, "relpath": pl.String, "problem_in": pl.String},
    )
    return finish(frame, source, "{relpath}", problem=pl.col("problem_in"))

"""WebVid: the `results_*.csv` files (`videoid`, `contentUrl`, `duration`, `page_dir`, `name`).

They total gigabytes, so they are scanned lazily with polars over the sorted list of matching files
(every column read as a string: ids keep their exact spelling). The caption is `name`.
"""

from __future__ import annotations

import glob
from pathlib import Path

import polars as pl

from videosavi.builders.sources.base import finish, pattern_fields, require_columns
from videosavi.errors import ManifestError

REQUIRED = ("videoid",)


def manifest_files(data_root: Path, manifest: str) -> list[Path]:
    """The files a manifest glob matches, sorted so that every machine reads them in one order."""
    files = sorted(Path(p) for p in glob.glob(str(data_root / manifest)) if Path(p).is_file())
    if not files:
        raise ManifestError(f"no WebVid manifest matches {data_root / manifest}")
    return files


def read_webvid(files: list[Path], source: str, pattern: str) -> pl.LazyFrame:
    needed = list(dict.fromkeys([*REQUIRED, *pattern_fields(pattern)]))
    has_name = True
    for f in files:
        try:
            header = pl.read_csv(f, n_rows=0, infer_schema=False).columns
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ManifestError(f"{f} is not a readable CSV: {str(exc).strip().splitlines()[0]}") from exc
        require_columns(f, header, needed, "WebVid")
        has_name = has_name and "name" in header
    columns = needed + (["name"] if has_name and "name" not in needed else [])
    frame = pl.scan_csv([str(f) for f in files], infer_schema=False).select(columns)
    frame = frame.with_columns(pl.col("videoid").str.strip_chars().alias("video_id"))
    return finish(frame, source, pattern, caption=pl.col("name") if has_name else None).unique(
        subset=["video_id"], keep="first", maintain_order=True
    )

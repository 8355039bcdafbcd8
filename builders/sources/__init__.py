"""Source readers: a manifest in its real format -> a polars LazyFrame of candidate videos.

`read_source(name, source_config, data_root)` picks the reader for the source's `kind`; manifest and
root paths are relative to the data root. See `base.py` for the columns every reader returns.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from videosavi.builders.sources.base import CANDIDATE_FIELDS, PROBLEM, candidate_schema, collect
from videosavi.builders.sources.folder import read_folder
from videosavi.builders.sources.star import read_star
from videosavi.builders.sources.vidal import read_vidal
from videosavi.builders.sources.webvid import manifest_files, read_webvid
from videosavi.config import SourceConfig
from videosavi.errors import ConfigError


def read_source(name: str, src: SourceConfig, data_root: Path) -> pl.LazyFrame:
    """Candidate videos of one configured source (see `base.CANDIDATE_FIELDS` and `PROBLEM`)."""
    data_root = Path(data_root)
    if src.kind == "folder":
        if src.pattern or src.manifest:
            raise ConfigError(f"source {name!r} is a folder source: it lists its own files, so drop "
                              "`manifest` and `pattern` (use `extensions` to choose file types)")
        return read_folder(data_root / src.root, name, src.extensions)
    assert src.manifest is not None  # SourceConfig requires it for manifest kinds
    pattern = src.file_pattern
    if src.kind == "star":
        return read_star(data_root / src.manifest, name, pattern)
    if src.kind == "vidal":
        return read_vidal(data_root / src.manifest, name, pattern)
    if src.kind == "webvid":
        return read_webvid(manifest_files(data_root, src.manifest), name, pattern)
    raise ConfigError(f"source {name!r}: unknown kind {src.kind!r}")  # pragma: no cover - Literal-checked


__all__ = ["CANDIDATE_FIELDS", "PROBLEM", "candidate_schema", "collect", "read_source"]

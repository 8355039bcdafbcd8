"""What every source reader returns: a polars LazyFrame of candidate videos, one row per video or clip.

Columns are the `VideoRef` fields a manifest can know (source, video_id, video_path, clip_start,
clip_end, caption), typed from the schema, plus `problem`: null for a usable row, else why the row
cannot become a `VideoRef` (the sampler reports such rows and moves on; one bad line in a multi-GB
manifest must not stop a build). Readers keep manifests lazy or columnar: no Python object per row.
"""

from __future__ import annotations

import string
from pathlib import Path

import polars as pl

from videosavi.errors import ConfigError, ManifestError
from videosavi.schemas import VideoRef
from videosavi.schemas.arrow import arrow_schema

CANDIDATE_FIELDS: tuple[str, ...] = ("source", "video_id", "video_path", "clip_start", "clip_end", "caption")
PROBLEM = "problem"

_missing = [f for f in CANDIDATE_FIELDS if f not in VideoRef.model_fields]
if _missing:  # pragma: no cover - guards a schema rename
    raise ImportError(f"VideoRef lost the fields {_missing} that source readers fill")


def candidate_schema() -> pl.Schema:
    """Polars dtypes of the candidate columns, derived from VideoRef's Arrow schema."""
    empty = pl.from_arrow(arrow_schema(VideoRef).empty_table())
    assert isinstance(empty, pl.DataFrame)
    schema = dict(empty.select(CANDIDATE_FIELDS).schema)
    schema[PROBLEM] = pl.String()
    return pl.Schema(schema)


def pattern_fields(pattern: str) -> list[str]:
    """The manifest columns a file pattern such as `{page_dir}/{videoid}.mp4` refers to."""
    fields = []
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ConfigError(f"file pattern {pattern!r} is not a valid format string: {exc}") from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field or not field.isidentifier():
            raise ConfigError(f"file pattern {pattern!r}: use named fields such as {{video_id}}, got {{{field}}}")
        if spec or conversion:
            raise ConfigError(f"file pattern {pattern!r}: format specs and conversions are not supported")
        fields.append(field)
    if not fields:
        raise ConfigError(f"file pattern {pattern!r} names no manifest column, so every row would share one file")
    return fields


def pattern_expr(pattern: str) -> pl.Expr:
    """The pattern as a polars string expression over manifest columns (null if any field is null)."""
    parts: list[pl.Expr] = []
    for literal, field, _spec, _conv in string.Formatter().parse(pattern):
        if literal:
            parts.append(pl.lit(literal))
        if field is not None:
            parts.append(pl.col(field).cast(pl.String))
    return pl.concat_str(parts)


def finish(frame: pl.LazyFrame, source: str, pattern: str, caption: pl.Expr | None = None,
           clip_start: pl.Expr | None = None, clip_end: pl.Expr | None = None,
           problem: pl.Expr | None = None) -> pl.LazyFrame:
    """Map a reader's frame (with a `video_id` column and the pattern's columns) to candidate columns."""
    schema = candidate_schema()
    path = pattern_expr(pattern)
    fields = pattern_fields(pattern)
    missing_field = pl.coalesce(
        [pl.when(pl.col(f).is_null() | (pl.col(f).cast(pl.String).str.strip_chars() == ""))
           .then(pl.lit(f"empty {f!r} (used by the file pattern)")) for f in fields]
    )
    checks = [] if problem is None else [problem]
    checks += [
        pl.when(pl.col("video_id").is_null() | (pl.col("video_id").str.strip_chars() == ""))
          .then(pl.lit("empty video id")),
        missing_field,
    ]
    return frame.select(
        pl.lit(source).alias("source"),
        pl.col("video_id").cast(pl.String),
        path.alias("video_path"),
        (clip_start if clip_start is not None else pl.lit(None)).cast(schema["clip_start"]).alias("clip_start"),
        (clip_end if clip_end is not None else pl.lit(None)).cast(schema["clip_end"]).alias("clip_end"),
        (caption if caption is not None else pl.lit(None)).cast(pl.String).alias("caption"),
        pl.coalesce(checks).alias(PROBLEM),
    )


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise ManifestError(f"{what} not found: {path}")
    if not path.is_file():
        raise ManifestError(f"{what} is not a file: {path}")
    return path


def require_columns(path: Path, have: list[str], need: list[str], kind: str) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise ManifestError(
            f"{path} is not a {kind} manifest: missing column(s) {', '.join(missing)} (found: {', '.join(have[:12])})"
        )


def collect(frame: pl.LazyFrame, what: str) -> pl.DataFrame:
    """Collect a lazy manifest, turning a parse failure into a ManifestError that names the file."""
    try:
        return frame.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ManifestError(f"cannot read {what}: {str(exc).strip().splitlines()[0]}") from exc

"""STAR (Charades videos): `STAR_train.json`, a JSON list of question rows.

Each row has `question_id`, `video_id` (the Charades id), `start` and `end` (seconds) besides the
question, answers and situation graphs, which we ignore. Many questions share one clip, so the
candidates are the distinct (video_id, start, end) clips, in order of first appearance; each clip is
its own sample (`star/6H78U#t=11.10,19.60`).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from videosavi.builders.sources.base import finish, pattern_fields, require_file
from videosavi.errors import ManifestError

REQUIRED = ("video_id", "start", "end")


def read_star(manifest: Path, source: str, pattern: str) -> pl.LazyFrame:
    require_file(manifest, "STAR manifest")
    _expect_json_list(manifest)
    columns = list(dict.fromkeys([*REQUIRED, *pattern_fields(pattern)]))
    try:
        # Only the named keys are materialised (as strings: ids may be numbers in other dumps);
        # the nested situation graphs are skipped by the parser.
        frame = pl.read_json(manifest, schema={c: pl.String for c in columns})
    except pl.exceptions.PolarsError as exc:
        raise ManifestError(f"{manifest} is not valid STAR JSON: {str(exc).strip().splitlines()[0]}") from exc
    if frame.height and frame["video_id"].null_count() == frame.height:
        raise ManifestError(f"{manifest} is not a STAR manifest: no row has a 'video_id'")
    absent = [c for c in columns if c not in REQUIRED and frame.height and frame[c].null_count() == frame.height]
    if absent:
        raise ManifestError(
            f"{manifest}: the file pattern {pattern!r} uses {', '.join(map(repr, absent))}, which no row has "
            f"(a row's keys: {', '.join(first_row_keys(manifest)) or 'none'})"
        )
    start = pl.col("start").str.strip_chars().cast(pl.Float64, strict=False)
    end = pl.col("end").str.strip_chars().cast(pl.Float64, strict=False)
    bad_time = (
        pl.when(pl.col("start").is_not_null() & start.is_null()).then(pl.lit("start is not a number"))
        .when(pl.col("end").is_not_null() & end.is_null()).then(pl.lit("end is not a number"))
        .when(start < 0).then(pl.lit("start is negative"))
        .when(end <= start).then(pl.lit("end is not after start"))
    )
    clips = frame.lazy().unique(subset=columns, keep="first", maintain_order=True)
    return finish(clips, source, pattern, clip_start=start, clip_end=end, problem=bad_time)


def first_row_keys(path: Path, limit: int = 64 << 20) -> list[str]:
    """The keys of the list's first object, read incrementally (the file can be hundreds of MB);
    only the error path that names the available columns asks."""
    decoder = json.JSONDecoder()
    buf = ""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        while len(buf) < limit:
            chunk = fh.read(1 << 16)
            buf += chunk
            start = buf.find("{")
            if start >= 0:
                try:
                    obj, _ = decoder.raw_decode(buf, start)
                    return sorted(obj) if isinstance(obj, dict) else []
                except json.JSONDecodeError:
                    pass
            if not chunk:
                break
    return []


def _expect_json_list(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"["):
        raise ManifestError(f"{path} is not a STAR manifest: expected a JSON list of question rows")

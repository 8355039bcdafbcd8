"""VIDAL-10M: one JSON object keyed by YouTube id, each value holding `folder`, `mplug`,
`polish_mplug`, `ofa` and `raw` (the file sits at `<root>/<folder>/<id>.mp4` by default).

The real file has millions of entries in a single object, which no columnar JSON reader splits into
rows, and loading it whole with `json.load` takes tens of GB. It is streamed instead: entries are
decoded one at a time from a bounded text buffer, only the needed fields are kept, and they are
packed into polars columns batch by batch. The caption is `polish_mplug`, else `mplug`, else `raw`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from videosavi.builders.sources.base import finish, pattern_fields, require_file
from videosavi.errors import ManifestError

CAPTION_KEYS = ("polish_mplug", "mplug", "raw")
_CHUNK = 1 << 20
_MAX_ENTRY = 64 << 20  # an entry larger than this is taken as a malformed file, not buffered forever
_BATCH = 100_000


def iter_object_items(fh: TextIO, name: str = "<json>") -> Iterator[tuple[str, Any]]:
    """Stream `(key, value)` pairs of a top-level JSON object without reading it whole."""
    decoder = json.JSONDecoder()
    buf, pos, eof, consumed = "", 0, False, 0

    def more() -> bool:
        nonlocal buf, pos, eof, consumed
        if eof:
            return False
        chunk = fh.read(_CHUNK)
        if not chunk:  # leave buf and pos alone: a caller may hold offsets into them
            eof = True
            return False
        consumed += pos
        buf, pos = buf[pos:] + chunk, 0
        if len(buf) > _MAX_ENTRY:
            raise ManifestError(f"{name}: malformed JSON near character {consumed} (an entry over 64 MB)")
        return True

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    def value() -> Any:
        nonlocal pos
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if more():
                    continue
                raise ManifestError(f"{name}: malformed JSON near character {consumed + exc.pos}: {exc.msg}") from exc
            if end == len(buf) and more():  # a number or literal may continue in the next chunk
                continue
            pos = end
            return obj

    def expect(chars: str) -> str:
        nonlocal pos
        c = skip_ws()
        if not c or c not in chars:
            found = repr(c) if c else "the end of the file"
            raise ManifestError(f"{name}: malformed JSON near character {consumed + pos}: expected "
                                f"{' or '.join(repr(x) for x in chars)}, found {found}")
        pos += 1
        return c

    more()
    if skip_ws() != "{":
        raise ManifestError(f"{name} is not a VIDAL manifest: expected one JSON object keyed by video id")
    pos += 1
    if skip_ws() == "}":
        return
    while True:
        if skip_ws() != '"':
            expect('"')
        key = value()
        expect(":")
        skip_ws()
        yield key, value()
        if expect(",}") == "}":
            return


def read_vidal(manifest: Path, source: str, pattern: str) -> pl.LazyFrame:
    require_file(manifest, "VIDAL manifest")
    fields = [f for f in dict.fromkeys(pattern_fields(pattern)) if f != "video_id"]
    columns = ["video_id", *fields, "caption", "problem_in"]
    batches: list[pl.DataFrame] = []
    rows: dict[str, list[Any]] = {c: [] for c in columns}
    seen: set[str] = set()  # pattern fields some entry has
    first_keys: list[str] | None = None
    with open(manifest, encoding="utf-8-sig") as fh:
        try:
            for key, entry in iter_object_items(fh, str(manifest)):
                rows["video_id"].append(key)
                if isinstance(entry, dict):
                    if first_keys is None:
                        first_keys = sorted(map(str, entry))
                    for f in fields:
                        v = entry.get(f)
                        rows[f].append(None if v is None else str(v))
                        if v is not None:
                            seen.add(f)
                    rows["caption"].append(_caption(entry))
                    rows["problem_in"].append(None)
                else:
                    for f in [*fields, "caption"]:
                        rows[f].append(None)
                    rows["problem_in"].append(f"entry is a {type(entry).__name__}, not an object")
                if len(rows["video_id"]) >= _BATCH:
                    batches.append(_frame(rows, columns))
                    rows = {c: [] for c in columns}
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{manifest} is not UTF-8 text: {exc}") from exc
    absent = [f for f in fields if f not in seen]
    if first_keys is not None and absent:
        raise ManifestError(
            f"{manifest}: the file pattern {pattern!r} uses {', '.join(map(repr, absent))}, which no entry has "
            f"(an entry's keys: {', '.join(first_keys) or 'none'})"
        )
    batches.append(_frame(rows, columns))
    frame = pl.concat(batches).lazy()
    return finish(frame, source, pattern, caption=pl.col("caption"), problem=pl.col("problem_in"))


def _caption(entry: dict) -> str | None:
    for k in CAPTION_KEYS:
        v = entry.get(k)
        if isinstance(v, str) and v.strip():
            return v
    return None


def _frame(rows: dict[str, list[Any]], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame({c: rows[c] for c in columns}, schema={c: pl.String for c in columns})

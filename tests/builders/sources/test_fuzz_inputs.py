"""Property-based: whatever bytes or shapes a config or manifest holds, reading it ends in one of our
own errors (a clean one-line CLI message) or in candidates, never in another exception (issue 13).

Random bytes, random YAML/JSON documents and random CSV tables are fed to the config loader and to the
four source readers (STAR JSON list, VIDAL JSON object, WebVid CSV, a plain folder with random file
names, some not UTF-8), each followed by a `collect` as the sampler does.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videosavi.builders.sources import collect
from videosavi.builders.sources.folder import read_folder
from videosavi.builders.sources.star import read_star
from videosavi.builders.sources.vidal import read_vidal
from videosavi.builders.sources.webvid import read_webvid
from videosavi.config import load_config
from videosavi.errors import VideosaviError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = st.sampled_from(["video_id", "start", "end", "folder", "mplug", "polish_mplug", "raw", "videoid", "name",
                        "page_dir", "contentUrl", "duration", "sources", "quota", "kind", "root", "manifest",
                        "pattern", "model", "frames", "resize", "seed", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12))
JSON_VALUES = st.recursive(SCALARS, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                           st.dictionaries(st.one_of(KEYS, st.text(max_size=6)),
                                                                           kids, max_size=5)), max_leaves=20)
ROWS = st.lists(st.dictionaries(KEYS, SCALARS, max_size=6), max_size=6)


def _only_our_errors(fn: object) -> object:
    """Run `fn`; any exception that is not a VideosaviError fails the property."""
    try:
        return fn()  # type: ignore[operator]
    except VideosaviError:
        return None


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: yaml.safe_dump(v).encode()),
                      st.dictionaries(KEYS, JSON_VALUES, max_size=6).map(lambda v: yaml.safe_dump(v).encode())))
def test_config_loader_raises_only_our_errors(tmp_path: Path, data: bytes) -> None:
    _only_our_errors(lambda: load_config(_write(tmp_path / "cfg.yaml", data)))


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), ROWS.map(json.dumps), JSON_VALUES.map(json.dumps)),
       pattern=st.sampled_from(["{video_id}.mp4", "{video_id}/{folder}.mp4", "{missing}.mp4"]))
def test_star_reader_raises_only_our_errors(tmp_path: Path, data: bytes | str, pattern: str) -> None:
    path = _write(tmp_path / "star.json", data)
    _only_our_errors(lambda: collect(read_star(path, "star", pattern), "star"))


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
                      .map(json.dumps), JSON_VALUES.map(json.dumps)),
       pattern=st.sampled_from(["{folder}/{video_id}.mp4", "{video_id}.mp4", "{missing}.mp4"]))
def test_vidal_reader_raises_only_our_errors(tmp_path: Path, data: bytes | str, pattern: str) -> None:
    path = _write(tmp_path / "vidal.json", data)
    _only_our_errors(lambda: collect(read_vidal(path, "vidal", pattern), "vidal"))


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


CSV_TABLES = st.lists(KEYS, min_size=1, max_size=5, unique=True).flatmap(
    lambda header: st.lists(st.lists(st.text(max_size=10), min_size=0, max_size=len(header) + 1), max_size=6)
    .map(lambda rows: _csv(header, rows)))


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), CSV_TABLES),
       pattern=st.sampled_from(["{page_dir}/{videoid}.mp4", "{videoid}.mp4"]))
def test_webvid_reader_raises_only_our_errors(tmp_path: Path, data: bytes | str, pattern: str) -> None:
    path = _write(tmp_path / "results_1.csv", data)
    _only_our_errors(lambda: collect(read_webvid([path], "webvid", pattern), "webvid"))


NAMES = st.lists(st.one_of(st.binary(min_size=1, max_size=10), st.text(min_size=1, max_size=10).map(os.fsencode)),
                 max_size=6)


@FUZZ
@given(names=NAMES)
def test_folder_reader_raises_only_our_errors(tmp_path_factory: pytest.TempPathFactory, names: list[bytes]) -> None:
    root = tmp_path_factory.mktemp("folder")
    for raw in names:
        name = raw.replace(b"/", b"_").replace(b"\x00", b"_").lstrip(b".") or b"x"
        try:
            with open(os.path.join(os.fsencode(root), name[:60] + b".mp4"), "wb") as fh:
                fh.write(b"x")
        except OSError:  # a name the file system itself refuses is not an input we can be given
            continue
    frame = _only_our_errors(lambda: collect(read_folder(root, "local", [".mp4"]), "folder"))
    assert isinstance(frame, pl.DataFrame)
    usable = frame.filter(pl.col("problem").is_null())
    assert all(isinstance(p, str) for p in usable["video_path"].to_list())

"""The hub server's pure parts: which Hub route a raw URL path names, and how a `Range` header is decided."""

from __future__ import annotations

import pytest

from videosavi.hub.byte_range import check_range
from videosavi.hub.git_tree import safe_repo_path
from videosavi.hub.hub_routes import Route, parse_route

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(("raw", "route"), [
    ("/api/datasets/org/vs", Route("info", "dataset", "org/vs")),
    ("/api/datasets/org/vs/revision/iter1", Route("info", "dataset", "org/vs", "iter1")),
    ("/api/datasets/org/vs/revision/refs%2Ftags%2Fiter1", Route("info", "dataset", "org/vs", "refs/tags/iter1")),
    ("/api/datasets/org/vs/refs", Route("refs", "dataset", "org/vs")),
    ("/api/datasets/org/vs/tree/iter1", Route("tree", "dataset", "org/vs", "iter1", "")),
    ("/api/datasets/org/vs/tree/iter1/data%2Fsub?recursive=true",
     Route("tree", "dataset", "org/vs", "iter1", "data/sub")),
    ("/api/datasets/org/vs/tree/refs%2Ftags%2Fiter1/data",
     Route("tree", "dataset", "org/vs", "refs/tags/iter1", "data")),
    ("/api/datasets/org/vs/tree/refs/convert/parquet/default", Route("tree", "dataset", "org/vs",
                                                                      "refs/convert/parquet", "default")),
    (f"/api/datasets/org/vs/paths-info/{SHA}", Route("paths-info", "dataset", "org/vs", SHA)),
    ("/api/datasets/org/vs/commits/main", Route("commits", "dataset", "org/vs", "main")),
    ("/datasets/org/vs/resolve/iter1/data/train-00000-of-00001.parquet",
     Route("resolve", "dataset", "org/vs", "iter1", "data/train-00000-of-00001.parquet")),
    ("/datasets/org/vs/resolve/refs%2Ftags%2Fiter1/a%20b.txt", Route("resolve", "dataset", "org/vs",
                                                                     "refs/tags/iter1", "a b.txt")),
    ("/org/model/resolve/main/config.json", Route("resolve", "model", "org/model", "main", "config.json")),
    ("/api/models/org/model/revision/main", Route("info", "model", "org/model", "main")),
    ("/api/datasets/org/vs/preupload/main", Route("repo-other", "dataset", "org/vs")),
    ("/api/datasets/org/vs/auth-check", Route("auth-check", "dataset", "org/vs")),
    ("/api/datasets/org/vs/auth-check/write", Route("auth-check", "dataset", "org/vs", path="write")),
    ("/api/datasets", Route("list", "dataset")),
    ("/api/models", Route("list", "model")),
    ("/api/datasets/squad", Route("info", "dataset", "squad")),
    ("/api/whoami-v2", Route("whoami")),
    ("/api/datasets-tags-by-type", Route("other")),
    ("/datasets/org/vs/resolve/main/a%00b", Route("resolve", "dataset", "org/vs", "main", "a\x00b")),
    ("/", Route("other")),
])
def test_routes_are_read_from_the_raw_path(raw: str, route: Route) -> None:
    assert parse_route(raw) == route


HUGE = "9" * 5000  # past Python's 4,300-digit limit for int()


@pytest.mark.parametrize(("header", "size", "ranges"), [
    ("bytes=0-9", 100, ((0, 10),)),
    ("bytes=90-", 100, ((90, 100),)),
    ("bytes=-10", 100, ((90, 100),)),
    ("bytes=-500", 100, ((0, 100),)),  # a suffix longer than the file is the whole file
    ("bytes=95-500", 100, ((95, 100),)),  # a last byte past the end is cut at the end
    ("BYTES = 0-0", 100, ((0, 1),)),
    ("bytes=0-1, 5-6", 100, ((0, 2), (5, 7))),
    ("bytes=0-9,", 100, ((0, 10),)),  # RFC 9110 5.6.1: empty list elements are ignored
    ("bytes=,0-3,,", 100, ((0, 4),)),
    ("bytes=0-9,200-", 100, ((0, 10),)),  # the satisfiable ranges of a list are served (RFC 9110 14.1.2)
    (f"bytes=0-{HUGE}", 100, ((0, 100),)),  # a huge last position is past the end: cut there
    (f"bytes=-{HUGE}", 100, ((0, 100),)),
    (f"bytes={'0' * 5000}7-8", 100, ((7, 9),)),  # leading zeros do not make a number huge
])
def test_satisfiable_ranges(header: str, size: int, ranges: tuple[tuple[int, int], ...]) -> None:
    decision = check_range(header, size)
    assert decision.outcome == "partial" and decision.ranges == ranges
    assert check_range(decision.header(), size).ranges == ranges  # the canonical form means the same


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=0-", 0), ("bytes=-5", 0),
    ("bytes=9-3", 100), ("bytes=abc", 100), ("bytes=", 100), ("bytes=,", 100), ("bytes=0-9,x", 100),
    ("bytes=1.5-3", 100), ("bytes=--3", 100), (f"bytes={HUGE}-", 100), (f"bytes={HUGE}-{HUGE}", 100),
    ("bytes=" + ",".join(["0-0"] * 101), 100),
])
def test_malformed_or_unsatisfiable_ranges_are_refused(header: str, size: int) -> None:
    assert check_range(header, size).outcome == "unsatisfiable"


@pytest.mark.parametrize("header", ["items=0-1", "bytes", "pages=3", "=0-1"])
def test_a_range_unit_other_than_bytes_is_ignored(header: str) -> None:
    """RFC 9110 14.2: a server ignores a Range header whose unit it does not understand (200, whole file)."""
    assert check_range(header, 100).outcome == "ignore"


@pytest.mark.parametrize(("path", "ok"), [
    ("README.md", True), ("data/train-00000-of-00001.parquet", True), ("a b/c", True),
    ("", False), ("/etc/passwd", False), ("../x", False), ("data/../README.md", False), ("./README.md", False),
    ("data//x", False), ("a\nb", False), ("a\x00b", False), ("a\x7fb", False), ("a\tb", False),
])
def test_only_literal_repository_paths_reach_git(path: str, ok: bool) -> None:
    assert safe_repo_path(path) is ok

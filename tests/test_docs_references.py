"""The tests the docs name exist: every `tests/...py` path in README.md and docs/*.md is a file, and every
`path::test_name` of docs/reliability.md's table (paths under tests/, `::name` continuing the row's last
file) is a test function in that file. Moving or renaming a test without its doc line fails here."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PATH = re.compile(r"(?<![\w/.])tests/[\w/]+(?:\.py|/)")
# a test file (relative to tests/) with an optional ::name, or a bare ::name continuing the last file
REF = re.compile(r"(?P<file>(?<![\w/])[\w/]*test_\w+\.py)(?:::(?P<name>\w+))?|(?<![\w.])::(?P<more>\w+)")


@cache
def functions_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def test_every_tests_path_in_the_docs_exists() -> None:
    named = {(doc.name, m) for doc in DOC_FILES for m in PATH.findall(doc.read_text(encoding="utf-8"))}
    assert ("README.md", "tests/hub/test_hub_api.py") in named  # the pattern finds what the docs say
    missing = sorted(f"{doc}: {path}" for doc, path in named if not (ROOT / path).exists())
    assert not missing, "docs name test paths that do not exist:\n" + "\n".join(missing)


def test_every_test_in_the_reliability_table_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = text[text.index("## The table"):]
    checked, missing = 0, []
    for line in table.splitlines():
        last: Path | None = None
        for m in REF.finditer(line):
            if m.group("file"):
                last = TESTS / m.group("file")
                if not last.is_file():
                    missing.append(f"{m.group('file')} (no such file under tests/)")
                    last = None
                    continue
            name = m.group("name") or m.group("more")
            if name and last is not None:
                checked += 1
                if name not in functions_in(last):
                    missing.append(f"{last.relative_to(TESTS)}::{name}")
    assert checked > 50, checked  # the table was read
    assert not missing, "docs/reliability.md names tests that do not exist:\n" + "\n".join(missing)

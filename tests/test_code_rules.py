"""Rules about the package's code that the linters do not check.

mypy runs with `ignore-without-code` and `warn_unused_ignores` (`make typecheck`); what it cannot ask
is why an error is ignored, so every `# type: ignore[code]` carries a reason after it.
"""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<rest>.*)$")
WITH_REASON = re.compile(r"^\[[a-z0-9-]+(,\s*[a-z0-9-]+)*\]\s+#\s*\S")


def package_files() -> list[Path]:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    return sorted(p for folder in set(mapping.values()) for p in (ROOT / folder).rglob("*.py"))


def test_every_type_ignore_has_a_code_and_a_reason() -> None:
    files = package_files()
    assert any(p.parts[-3:] == ("builders", "run", "runner.py") for p in files)  # the mapped folders are walked
    bare = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
            for p in files for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
            if (m := IGNORE.search(line)) and not WITH_REASON.match(m.group("rest"))]
    assert not bare, "a type: ignore without its [code] and a reason:\n" + "\n".join(bare)

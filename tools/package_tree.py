"""Lay out the `videosavi` import package as one folder tree of symlinks, for tools that walk folders.

The design keeps `builders/`, `schemas/`, `curation/`, ... at the repository root and installs them as
subpackages of `videosavi` through setuptools' `package-dir` mapping. Python finds them through the
editable install's import hook, but import-linter (grimp) and mypy look for modules by walking
folders, and would see `videosavi` without its subpackages. This script reads the mapping from
pyproject.toml and builds `OUT/videosavi/` with each module or subpackage linked at its installed
place, so `PYTHONPATH=OUT lint-imports` and `mypy -p videosavi` (run in OUT) see the package as
installed. Paths they print are the installed ones: `videosavi/builders/run/runner.py` is `builders/run/runner.py`.

Usage: python tools/package_tree.py [OUT]   (default build/package-tree)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"__pycache__"}


def package_dirs(pyproject: Path) -> dict[str, Path]:
    """Import name -> source folder, from `[tool.setuptools] package-dir`."""
    table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    mapping = table["tool"]["setuptools"]["package-dir"]
    return {name: (pyproject.parent / folder).resolve() for name, folder in mapping.items()}


def build_tree(out: Path, mapping: dict[str, Path]) -> Path:
    """OUT/<top>/ with every entry of each mapped folder linked in, mapped subpackages at their names.
    Only the package folders are rebuilt: the tools' caches beside them (.mypy_cache, ...) stay."""
    for top in {name.split(".")[0] for name in mapping}:
        shutil.rmtree(out / top, ignore_errors=True)
    for name in sorted(mapping, key=lambda n: n.count(".")):
        target = out.joinpath(*name.split("."))
        if target.is_symlink() or target.exists():
            raise SystemExit(f"{name}: {target} is already in the tree (nested mapping inside a linked folder)")
        target.mkdir(parents=True)
        for entry in sorted(mapping[name].iterdir()):
            if entry.name in SKIP or ".".join([name, entry.name]) in mapping:
                continue
            (target / entry.name).symlink_to(entry)
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "build" / "package-tree"
    build_tree(out.resolve(), package_dirs(ROOT / "pyproject.toml"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

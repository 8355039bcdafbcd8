"""Safe relative POSIX paths: rows point at videos under a user's local root, never outside it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def check_relative_posix_path(value: str) -> str:
    """Reject anything that could escape the source root or only works on one OS."""
    if not value or not value.strip():
        raise ValueError("path must not be empty")
    if "\\" in value:
        raise ValueError(f"path must use '/' separators, got {value!r}")
    if value.startswith("/") or _WINDOWS_DRIVE.match(value):
        raise ValueError(f"path must be relative to the source root, got absolute {value!r}")
    parts = value.split("/")
    if any(p == ".." for p in parts):
        raise ValueError(f"path must not contain '..', got {value!r}")
    if any(p == "" for p in parts):
        raise ValueError(f"path must not contain empty components, got {value!r}")
    if "\x00" in value:
        raise ValueError("path must not contain NUL")
    return "/".join(p for p in parts if p != ".") or value


RelativePosixPath = Annotated[str, AfterValidator(check_relative_posix_path)]

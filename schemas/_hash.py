"""A tiny hash helper kept inside schemas/ so schemas depend on nothing else of ours."""

from __future__ import annotations

import hashlib


def short_sha256(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]

"""Identify a model's weights for provenance and resume keys, and load them (`load_pretrained`: the
builder's transformers backend and training load a checkpoint the same way).

A hub model is identified by its commit; a local directory (a tiny model, a merged DPO model of the
previous iteration) has none, so we hash its weight files: the same weights give the same revision on
any machine, and retrained weights a new one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from videosavi.errors import ModelError
from videosavi.hashing import sha256_file

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def weight_files(path: str | Path) -> list[Path]:
    root = Path(path)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weights_hash(path: str | Path, length: int = 12) -> str:
    """sha256 over the weight files' relative names and contents, hex, `length` characters."""
    root = Path(path)
    files = weight_files(root)
    if not files:
        raise ModelError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under {root}")
    return combine_file_hashes({f.relative_to(root).as_posix(): sha256_file(f) for f in files})[:length]


def combine_file_hashes(hashes: dict[str, str]) -> str:
    """One sha256 (hex) over files given as relative name -> sha256, in the order given."""
    h = hashlib.sha256()
    for name, digest in hashes.items():
        h.update(name.encode("utf-8"))
        h.update(b"\0")
        h.update(digest.encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


def local_revision(path: str | Path) -> str:
    return f"local:{weights_hash(path)}"


def load_pretrained(source: str, revision: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, processor) of a local folder or a hub id through transformers' Auto classes, as a real
    checkpoint loads; a one-line `ModelError` when it cannot load (a hub id's `revision` is used, a folder's
    ignored)."""
    from videosavi.compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    is_local = Path(source).is_dir()
    rev = None if is_local else revision
    try:
        processor = AutoProcessor.from_pretrained(source, revision=rev)
        model = AutoModelForImageTextToText.from_pretrained(source, revision=rev, dtype=dtype)
    except (OSError, ValueError) as exc:
        hint = "" if is_local else " (not a local folder; is it a hub id cached on this machine?)"
        raise ModelError(f"cannot load model {source!r}{hint}: {exc}") from exc
    return model, processor

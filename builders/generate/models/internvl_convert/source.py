"""Find and check the original checkpoint's files before anything is converted.

SRC is a local folder or a Hugging Face hub id already in the local cache (`snapshot_download` with
`local_files_only=True`: nothing is downloaded, so an id that is not cached is refused with the
command that fetches it). Only safetensors weights are read (a `.bin` checkpoint would mean loading
pickles); a sharded checkpoint's index must name shards that exist, and each shard must hold exactly
the tensors the index gives it. Reading is lazy, shard by shard, so an 8B model is never in memory
twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.errors import ModelError

CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


@dataclass(frozen=True)
class SourceCheckpoint:
    """An original checkpoint on disk: where, what it is called, its config and its weight shards."""

    root: Path
    label: str  # the hub id, or the folder's name (never an absolute path: it goes into records)
    revision: str | None  # the cache snapshot's commit for a hub id
    config: dict[str, Any]
    shards: tuple[Path, ...]
    index: dict[str, str] | None  # tensor name -> shard file name, when sharded

    def expected_keys(self, shard: Path) -> set[str] | None:
        if self.index is None:
            return None
        return {key for key, name in self.index.items() if name == shard.name}


def _resolve(src: str, revision: str | None) -> tuple[Path, str, str | None]:
    path = Path(src).expanduser()
    if path.is_dir():
        if revision:
            raise ModelError(f"--revision {revision!r} applies to a hub id; {src} is a local folder")
        return path.resolve(), path.resolve().name, None
    if path.exists():
        raise ModelError(f"{src}: exists but is not a folder; SRC is a checkpoint folder or a hub id")
    if src.count("/") != 1 or src.startswith(("/", ".", "~")):
        raise ModelError(f"{src}: no such folder, and not a hub id of the form org/name")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        snapshot = Path(snapshot_download(repo_id=src, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError) as exc:
        rev = f" --revision {revision}" if revision else ""
        raise ModelError(
            f"{src}: no such folder, and not in the local Hugging Face cache; fetch it first "
            f"(`hf download {src}{rev}`) or pass the folder"
        ) from exc
    return snapshot, src, snapshot.name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: missing") from exc
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc


def check_shard_name(root: Path, name: object, index_path: Path, *, cache_snapshot: bool) -> None:
    """A shard the index names must be a file inside SRC, decided from the name (and, for a plain
    folder, where it resolves) before anything is opened: an index naming `/etc/passwd` or
    `../x.safetensors` is refused without reading, let alone hashing, that file. A hub cache snapshot's
    files are links into the cache's blob store, so there the name alone decides."""
    if not isinstance(name, str) or not name or len(name) > 255 or "\x00" in name:
        raise ModelError(f"{index_path}: weight_map names {str(name)[:80]!r}, not a shard file name")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or "" in parts:
        raise ModelError(f"{index_path}: weight_map names {name[:80]!r}, a file outside {root.name}; refusing to "
                         "open it (a checkpoint's index names only its own shards)")
    if not cache_snapshot and not (root / name).resolve().is_relative_to(root.resolve()):
        raise ModelError(f"{index_path}: weight_map names {name[:80]!r}, which leads out of {root.name} through a "
                         "symbolic link; refusing to open it")


def _shards(root: Path, cache_snapshot: bool = False) -> tuple[tuple[Path, ...], dict[str, str] | None]:
    index_path = root / INDEX_FILE
    if index_path.is_file():
        index = _read_json(index_path)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelError(f"{index_path}: no weight_map")
        for name in weight_map.values():
            check_shard_name(root, name, index_path, cache_snapshot=cache_snapshot)
        names = sorted(set(weight_map.values()))
        for name in names:
            if not (root / name).is_file():
                raise ModelError(f"{root / name}: shard listed in {INDEX_FILE} is missing")
        return tuple(root / name for name in names), dict(weight_map)
    if (root / SINGLE_FILE).is_file():
        return (root / SINGLE_FILE,), None
    if any(root.glob("*.bin")):
        raise ModelError(f"{root}: only .bin weights; the converter reads safetensors only (no pickle loading)")
    raise ModelError(f"{root}: no {SINGLE_FILE} and no {INDEX_FILE}")


def open_source(src: str, revision: str | None = None) -> SourceCheckpoint:
    """Locate SRC and check that its config and every weight shard are there."""
    root, label, rev = _resolve(src, revision)
    config = _read_json(root / CONFIG_FILE)
    if not isinstance(config, dict):
        raise ModelError(f"{root / CONFIG_FILE}: not a JSON object")
    shards, index = _shards(root, cache_snapshot=rev is not None)
    return SourceCheckpoint(root=root, label=label, revision=rev, config=config, shards=shards, index=index)


def iter_tensors(source: SourceCheckpoint, shard: Path) -> Iterator[tuple[str, Any]]:
    """(name, tensor) of one shard, one tensor in memory at a time; checks the shard against the index."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(shard), framework="pt")
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{shard}: not a readable safetensors file ({exc})") from exc
    with handle as f:
        keys = list(f.keys())
        expected = source.expected_keys(shard)
        if expected is not None:
            missing = sorted(expected - set(keys))
            if missing:
                raise ModelError(f"{shard}: lacks {missing[0]!r}, which {INDEX_FILE} places in it")
            extra = sorted(set(keys) - expected)
            if extra:
                raise ModelError(f"{shard}: holds {extra[0]!r}, which {INDEX_FILE} does not list")
        for key in keys:
            yield key, f.get_tensor(key)

"""Rename and split the original tensors, shard by shard, into native safetensors shards.

Streaming keeps memory at one output shard plus one tensor: an 8B model converts without holding
two copies. Every tensor is checked against the shape the native model (built on the meta device
from the converted config, so it costs no memory) expects; every native weight must be produced
exactly once. Anything else is refused with the shard file and the tensor name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.builders.generate.models.internvl_convert.fused import (
    GroupedQueryLayout,
    split_internlm2_wqkv,
    split_vision_qkv,
)
from videosavi.builders.generate.models.internvl_convert.keys import KeyRule, TextArch, map_key
from videosavi.builders.generate.models.internvl_convert.source import SourceCheckpoint, iter_tensors
from videosavi.errors import ModelError

DEFAULT_MAX_SHARD_BYTES = 5 * 10**9
INDEX_FILE = "model.safetensors.index.json"


def native_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight of the native model for `config`, without allocating it."""
    import torch
    from transformers import InternVLForConditionalGeneration

    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


class ShardWriter:
    """Collects tensors and writes a safetensors shard whenever the next tensor would pass the limit."""

    def __init__(self, out: Path, max_bytes: int) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self._pending: dict[str, Any] = {}
        self._pending_bytes = 0
        self._parts: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0

    def add(self, name: str, tensor: Any) -> None:
        size = tensor.numel() * tensor.element_size()
        if self._pending and self._pending_bytes + size > self.max_bytes:
            self._flush()
        self._pending[name] = tensor
        self._pending_bytes += size
        self.total_bytes += size

    def _flush(self) -> None:
        from safetensors.torch import save_file

        path = self.out / f".part-{len(self._parts):05d}.safetensors"
        save_file(self._pending, str(path), metadata={"format": "pt"})
        self._parts.append((path, list(self._pending)))
        self._pending, self._pending_bytes = {}, 0

    def finish(self) -> list[str]:
        """Give the parts their final names (and write the index when there are several)."""
        if self._pending or not self._parts:
            self._flush()
        n = len(self._parts)
        names = ["model.safetensors"] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        weight_map: dict[str, str] = {}
        for (path, keys), name in zip(self._parts, names, strict=True):
            os.replace(path, self.out / name)
            weight_map.update(dict.fromkeys(keys, name))
        if n > 1:
            index = {"metadata": {"total_size": self.total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
            (self.out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return names


@dataclass(frozen=True)
class WeightStats:
    source_tensors: int
    native_tensors: int
    dropped: tuple[str, ...]
    files: tuple[str, ...]
    total_bytes: int
    dtypes: tuple[str, ...]


def _split(rule: KeyRule, tensor: Any, layout: GroupedQueryLayout) -> tuple[Any, ...]:
    if rule.split == "vision_qkv":
        return split_vision_qkv(tensor)
    if rule.split == "internlm2_wqkv":
        return split_internlm2_wqkv(tensor, layout)
    return (tensor,)


def _source_shape(rule: KeyRule, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The shape the original tensor must have: the native parts stacked along the first dimension."""
    parts = [shapes[t] for t in rule.targets]
    if len(parts) == 1:
        return parts[0]
    return (sum(p[0] for p in parts), *parts[0][1:])


def convert_weights(
    source: SourceCheckpoint,
    text_arch: TextArch,
    layout: GroupedQueryLayout,
    shapes: dict[str, tuple[int, ...]],
    out: Path,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> WeightStats:
    """Write the native weights of `source` into `out`; see the module docstring."""
    writer = ShardWriter(out, max_shard_bytes)
    produced: set[str] = set()
    dropped: list[str] = []
    dtypes: set[str] = set()
    n_source = 0
    for shard in source.shards:
        for key, tensor in iter_tensors(source, shard):
            n_source += 1
            rule = map_key(key, text_arch)
            if rule is None:
                raise ModelError(f"{shard}: unknown tensor {key!r}; not an InternVL2.5/3 weight ({text_arch} text)")
            if rule.split == "drop":
                dropped.append(key)
                continue
            for target in rule.targets:
                if target not in shapes:
                    raise ModelError(f"{shard}: {key!r} maps to {target!r}, which the model in config.json lacks")
            want = _source_shape(rule, shapes)
            if tuple(tensor.shape) != want:
                raise ModelError(
                    f"{shard}: {key!r} has shape {list(tensor.shape)}, config.json implies {list(want)}"
                )
            for target, piece in zip(rule.targets, _split(rule, tensor, layout), strict=True):
                if target in produced:
                    raise ModelError(f"{shard}: {key!r} gives {target!r} a second time")
                produced.add(target)
                dtypes.add(str(piece.dtype).removeprefix("torch."))
                writer.add(target, piece)
            del tensor
    missing = sorted(set(shapes) - produced)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ModelError(f"{source.root}: no weights for native {missing[0]!r}{more}; is a shard or tensor missing?")
    files = writer.finish()
    return WeightStats(n_source, len(produced), tuple(dropped), tuple(files), writer.total_bytes, tuple(sorted(dtypes)))

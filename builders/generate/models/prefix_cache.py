"""A byte-bounded LRU of prefilled video prefixes (key/value tensors per layer).

A video's prefix is needed by its 19 calls over four stages that run minutes apart, while the build
streams through thousands of videos: keeping every prefix would exhaust memory, keeping none would
re-encode the video per call. The bound is in bytes because prefixes differ in size (frame count,
resolution, model); the least recently used ones go first. A prefix larger than the whole bound is
not kept at all: its calls recompute it, which is slower but never wrong.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from videosavi.builders.generate.models.stats import BackendStats


@dataclass
class Prefix:
    """One prefilled prefix: what the model computed for the tokens up to and including the video."""

    key: Hashable
    ids: list[int]  # the prefix's token ids (system turn, user-turn start, video tokens)
    layers: list[tuple[Any, Any]]  # per decoder layer: keys, values, each (1, kv_heads, len, head_dim)
    meta: dict[str, Any] = field(default_factory=dict)  # per-video processor outputs positions need

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)

    def __len__(self) -> int:
        return len(self.ids)


class PrefixCache:
    """LRU of `Prefix` by key, holding at most `max_bytes`; counts into `stats`."""

    def __init__(self, max_bytes: int, stats: BackendStats | None = None) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.stats = stats or BackendStats()
        self._entries: OrderedDict[Hashable, Prefix] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable) -> Prefix | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, prefix: Prefix) -> bool:
        """Keep `prefix`, evicting the least recently used; False if it alone exceeds the bound."""
        size = prefix.nbytes
        if size > self.max_bytes:
            self.stats.prefix_uncacheable += 1
            return False
        old = self._entries.pop(prefix.key, None)
        if old is not None:
            self._bytes -= old.nbytes
        while self._entries and self._bytes + size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes
            self.stats.prefix_evictions += 1
        self._entries[prefix.key] = prefix
        self._bytes += size
        self.stats.prefix_cache_bytes = self._bytes
        self.stats.prefix_cache_peak_bytes = max(self.stats.prefix_cache_peak_bytes, self._bytes)
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self.stats.prefix_cache_bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

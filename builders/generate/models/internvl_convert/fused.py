"""Split the original checkpoint's fused projections into the native q/k/v projections.

Pure tensor functions. Both work on weights (out, in) and biases (out,) alike, since only the first
dimension is split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GroupedQueryLayout:
    """Head counts of a grouped-query attention layer: `num_heads` query heads share
    `num_kv_heads` key/value heads, each `head_dim` wide."""

    num_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def groups(self) -> int:
        return self.num_heads // self.num_kv_heads

    @property
    def fused_rows(self) -> int:
        return self.num_kv_heads * (self.groups + 2) * self.head_dim


def split_internlm2_wqkv(wqkv: Any, layout: GroupedQueryLayout) -> tuple[Any, Any, Any]:
    """InternLM2's `wqkv` rows are grouped per key/value head: for each of the `num_kv_heads` heads,
    its `groups` query heads, then its key head, then its value head, each `head_dim` rows.

    Query head `h * groups + g` is the g-th query of kv head h, which is the order Llama's attention
    expects (query head i reads kv head i // groups), so the query rows keep their order.
    """
    rest = tuple(wqkv.shape[1:])
    blocks = wqkv.reshape(layout.num_kv_heads, layout.groups + 2, layout.head_dim, *rest)
    q = blocks[:, : layout.groups].reshape(layout.num_heads * layout.head_dim, *rest).contiguous()
    k = blocks[:, -2].reshape(layout.num_kv_heads * layout.head_dim, *rest).contiguous()
    v = blocks[:, -1].reshape(layout.num_kv_heads * layout.head_dim, *rest).contiguous()
    return q, k, v


def split_vision_qkv(qkv: Any) -> tuple[Any, Any, Any]:
    """InternViT's `attn.qkv` is all query rows, then all key rows, then all value rows."""
    q, k, v = (part.contiguous() for part in qkv.chunk(3, dim=0))
    return q, k, v

"""Tensor names: original InternVL checkpoint -> native `InternVLForConditionalGeneration`.

Pure: a name goes in, the native name(s) and the way to split the tensor come out, or None for a
name this converter does not know (the caller refuses the checkpoint rather than guess). Each table
row is a full-match pattern and the native names as `re` templates.

Facts: InternViT keeps `embeddings.class_embedding`, `attn.qkv` (fused), `ls1/ls2` (layer scale) and
`norm1/norm2`; the projector is `mlp1` = LayerNorm, Linear, GELU, Linear (indices 0, 1, 3). InternLM2
names `tok_embeddings`, `attention.wqkv` (fused, grouped-query order), `attention.wo`,
`feed_forward.w1/w3/w2` (gate/up/down), `attention_norm`, `ffn_norm` and `output`; a Qwen2 language
model already uses the native names under `language_model.model.`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TextArch = Literal["internlm2", "qwen2"]
Split = Literal["none", "vision_qkv", "internlm2_wqkv", "drop"]


@dataclass(frozen=True)
class KeyRule:
    """Native names for one original tensor; several when `split` cuts it into q/k/v."""

    targets: tuple[str, ...]
    split: Split


_Row = tuple[str, tuple[str, ...], Split]

_V = r"vision_model\.encoder\.layers\.(\d+)\."
_VT = r"model.vision_tower.encoder.layer.\1."
_L = r"language_model\.model\.layers\.(\d+)\."
_LT = r"model.language_model.layers.\1."
_QKV = ("q_proj", "k_proj", "v_proj")

_VISION_AND_PROJECTOR: list[_Row] = [
    (r"vision_model\.embeddings\.class_embedding", ("model.vision_tower.embeddings.cls_token",), "none"),
    (r"vision_model\.embeddings\.position_embedding", ("model.vision_tower.embeddings.position_embeddings",), "none"),
    (
        r"vision_model\.embeddings\.patch_embedding\.(weight|bias)",
        (r"model.vision_tower.embeddings.patch_embeddings.projection.\1",),
        "none",
    ),
    (_V + r"ls([12])", (_VT + r"lambda_\2",), "none"),
    (_V + r"attn\.qkv\.(weight|bias)", tuple(_VT + rf"attention.{p}.\2" for p in _QKV), "vision_qkv"),
    (_V + r"attn\.proj\.(weight|bias)", (_VT + r"attention.projection_layer.\2",), "none"),
    (_V + r"attn\.([qk])_norm\.weight", (_VT + r"attention.\2_norm.weight",), "none"),
    (_V + r"mlp\.fc([12])\.(weight|bias)", (_VT + r"mlp.fc\2.\3",), "none"),
    (_V + r"norm1\.(weight|bias)", (_VT + r"layernorm_before.\2",), "none"),
    (_V + r"norm2\.(weight|bias)", (_VT + r"layernorm_after.\2",), "none"),
    (r"mlp1\.0\.(weight|bias)", (r"model.multi_modal_projector.layer_norm.\1",), "none"),
    (r"mlp1\.1\.(weight|bias)", (r"model.multi_modal_projector.linear_1.\1",), "none"),
    (r"mlp1\.3\.(weight|bias)", (r"model.multi_modal_projector.linear_2.\1",), "none"),
]

_INTERNLM2: list[_Row] = [
    (r"language_model\.model\.tok_embeddings\.weight", ("model.language_model.embed_tokens.weight",), "none"),
    (_L + r"attention\.wqkv\.(weight|bias)", tuple(_LT + rf"self_attn.{p}.\2" for p in _QKV), "internlm2_wqkv"),
    (_L + r"attention\.wo\.(weight|bias)", (_LT + r"self_attn.o_proj.\2",), "none"),
    (_L + r"feed_forward\.w1\.weight", (_LT + "mlp.gate_proj.weight",), "none"),
    (_L + r"feed_forward\.w3\.weight", (_LT + "mlp.up_proj.weight",), "none"),
    (_L + r"feed_forward\.w2\.weight", (_LT + "mlp.down_proj.weight",), "none"),
    (_L + r"attention_norm\.weight", (_LT + "input_layernorm.weight",), "none"),
    (_L + r"ffn_norm\.weight", (_LT + "post_attention_layernorm.weight",), "none"),
    (r"language_model\.model\.norm\.weight", ("model.language_model.norm.weight",), "none"),
    (r"language_model\.output\.weight", ("lm_head.weight",), "none"),
    # A rotary buffer some older saves kept; the native model recomputes it from the config.
    (_L + r"attention\.rotary_emb\.inv_freq", (), "drop"),
]

_QWEN2: list[_Row] = [
    (r"language_model\.model\.embed_tokens\.weight", ("model.language_model.embed_tokens.weight",), "none"),
    (
        _L + r"(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.(weight|bias)",
        (_LT + r"\2.\3",),
        "none",
    ),
    (_L + r"(input_layernorm|post_attention_layernorm)\.weight", (_LT + r"\2.weight",), "none"),
    (r"language_model\.model\.norm\.weight", ("model.language_model.norm.weight",), "none"),
    (r"language_model\.lm_head\.weight", ("lm_head.weight",), "none"),
    (_L + r"self_attn\.rotary_emb\.inv_freq", (), "drop"),
]


def _compile(rows: list[_Row]) -> list[tuple[re.Pattern[str], tuple[str, ...], Split]]:
    return [(re.compile(pattern), targets, split) for pattern, targets, split in rows]


_TABLES = {
    "internlm2": _compile(_VISION_AND_PROJECTOR + _INTERNLM2),
    "qwen2": _compile(_VISION_AND_PROJECTOR + _QWEN2),
}


def map_key(key: str, text_arch: TextArch) -> KeyRule | None:
    """The native name(s) of an original tensor, or None when the name is not an InternVL one."""
    for pattern, targets, split in _TABLES[text_arch]:
        match = pattern.fullmatch(key)
        if match:
            return KeyRule(tuple(match.expand(t) for t in targets), split)
    return None

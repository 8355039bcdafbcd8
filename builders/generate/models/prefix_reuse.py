"""Encode each video once and prefill its prompt prefix once, for all of that video's calls.

The chat template puts the video first in the user turn (`stages/base.video_user_message`), so every call
about a video starts with the same tokens: system turn, user-turn start, the video's placeholder tokens.
The prefix ends at the last multimodal token; the rest (the stage's text, the assistant header) is the
call's own. Per video we run the processor and the vision tower once, prefill the prefix once, and keep
its key/value tensors in a `PrefixCache`; each call then prefills only its own tokens.

How a batch of calls about several videos is laid out, so `generate` sees what it would have computed
itself from the full prompts:

    cache part (not recomputed)      new part (prefilled now)
    [pad ... | prefix of video A ]   [pad ... | this call's tokens]
    [pad | prefix of video B     ]   [this call's tokens, longer   ]

Padding sits in both parts and is masked out by the 2D attention mask. Position ids come from the
model's own `_prepare_position_ids_for_generation` on the full (prefix + own) token ids with that mask,
the function `generate` calls for an uncached prompt: plain models count valid tokens, Qwen2/2.5/3-VL
get their multimodal 3D positions from the video grid kept with the prefix. So every valid token gets
the position it would have had in the uncached path, and decoding continues from there unchanged.

A call's token ids are made without the video processor: the processor's expansion of the video
placeholder (`return_text_replacement_offsets`) is kept per video and substituted into each call's
template text, which the tokenizer then reads. The first call of a video checks this against the
processor's own ids; a mismatch disables reuse (`PrefixUnsupported`) rather than risk other tokens.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from videosavi.builders.generate.models.base import GenerationRequest, video_identity
from videosavi.builders.generate.models.prefix_cache import Prefix, PrefixCache
from videosavi.builders.generate.models.stats import BackendStats

# Processor outputs that run along the sequence: sliced to the prefix before prefilling it.
SEQUENCE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
# Expansions of the video placeholder kept (a few KB each): enough for several windows of videos.
MAX_REPLACEMENTS = 256


class PrefixUnsupported(Exception):
    """This model or processor cannot reuse prefixes safely; the backend falls back to full prompts."""


@dataclass
class _Row:
    ids: list[int]
    prefix: Prefix


def prefix_length(ids: list[int], mm_types: list[int]) -> int:
    """Tokens up to and including the last multimodal token (0 when there is none)."""
    for i in range(len(mm_types) - 1, -1, -1):
        if mm_types[i]:
            return i + 1
    return 0


def prefix_key(video_id: str, prefix_ids: list[int]) -> tuple[str, str]:
    """A prefix is its video and its exact tokens (a different system turn is a different prefix)."""
    digest = hashlib.blake2b(",".join(map(str, prefix_ids)).encode("ascii"), digest_size=16).hexdigest()
    return video_id, digest


def kv_layers(cache: Any) -> list[tuple[Any, Any]]:
    """Keys and values of a freshly prefilled cache, refusing layer kinds a prefix cannot be cut from."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if not layers:
        raise PrefixUnsupported(f"the model returned no layered cache ({type(cache).__name__})")
    out = []
    for layer in layers:
        if type(layer) is not DynamicLayer:  # sliding-window, linear-attention, quantized: not plain K/V
            raise PrefixUnsupported(f"cache layer {type(layer).__name__} cannot be reused as a prefix")
        out.append((layer.keys, layer.values))
    return out


class PrefixReuse:
    """Builds `generate` inputs for calls with frames from cached video prefixes (see module doc)."""

    def __init__(self, model: Any, processor: Any, tokenizer: Any, device: str, dtype: Any,
                 cache: PrefixCache, stats: BackendStats, pad_id: int) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.cache = cache
        self.stats = stats
        self.pad_id = pad_id
        video_token: str | None = getattr(processor, "video_token", None)
        self.image_token: str | None = getattr(processor, "image_token", None)
        if not video_token:
            raise PrefixUnsupported(f"{type(processor).__name__} names no video token")
        self.video_token: str = video_token
        if not hasattr(model, "_prepare_position_ids_for_generation"):
            raise PrefixUnsupported(f"{type(model).__name__} has no _prepare_position_ids_for_generation")
        self._replacements: OrderedDict[str, str] = OrderedDict()

    def accepts(self, request: GenerationRequest, text: str) -> bool:
        """One video placeholder and no image placeholder in the prompt: the layout reuse assumes."""
        if request.frames is None or text.count(self.video_token) != 1:
            return False
        return not (self.image_token and self.image_token != self.video_token and self.image_token in text)

    def prepare(self, batch: list[GenerationRequest], texts: list[str]) -> dict[str, Any]:
        """`generate` keyword arguments for a batch of accepted requests: ids, mask, positions, cache."""
        import torch

        rows: list[_Row] = []
        made: dict[tuple[str, str], Prefix] = {}  # prefixes this batch computed, kept even if evicted
        for request, text in zip(batch, texts, strict=True):
            vid = video_identity(request)
            assert vid is not None
            processed = None
            replacement = self._replacements.get(vid)
            if replacement is None:
                processed, replacement = self._process(request, text)
                self._remember(vid, replacement)
            else:
                self._replacements.move_to_end(vid)
            ids = self._token_ids(text, replacement)
            if processed is not None and ids != processed["input_ids"][0].tolist():
                raise PrefixUnsupported("the tokenizer alone does not reproduce the processor's token ids")
            mm_types = self.processor.create_mm_token_type_ids([ids])[0]
            n = prefix_length(ids, mm_types)
            if n == 0 or any(mm_types[n:]):
                raise PrefixUnsupported("the prompt's multimodal tokens do not form one leading block")
            key = prefix_key(vid, ids[:n])
            prefix = made.get(key) or self.cache.get(key)
            if prefix is None:
                if processed is None:
                    processed, _ = self._process(request, text)
                prefix = self._prefill(processed, n, key)
                made[key] = prefix
                self.cache.put(prefix)
            else:
                self.stats.prefix_hits += 1
            self.stats.note_call(key, n, len(ids) - n)
            rows.append(_Row(ids=ids, prefix=prefix))
        return self._assemble(rows, torch)

    # -- internals -------------------------------------------------------------------------------

    def _remember(self, vid: str, replacement: str) -> None:
        self._replacements[vid] = replacement
        while len(self._replacements) > MAX_REPLACEMENTS:
            self._replacements.popitem(last=False)

    def _token_ids(self, text: str, replacement: str) -> list[int]:
        expanded = text.replace(self.video_token, replacement, 1)
        return list(self.tokenizer(expanded)["input_ids"])

    def _process(self, request: GenerationRequest, text: str) -> tuple[Any, str]:
        """The processor on one full prompt with its video: ids, pixel values, and the expansion text."""
        out = self.processor(
            text=[text],
            videos=[request.frames],
            do_sample_frames=False,  # the frames are already the sampled ones
            input_data_format="channels_last",
            return_text_replacement_offsets=True,
            return_tensors="pt",
        )
        offsets = out.pop("text_replacement_offsets", None) or [[]]
        replacement = next((o["replacement"] for o in offsets[0] if o.get("type") == "video"), None)
        if replacement is None:
            raise PrefixUnsupported(f"{type(self.processor).__name__} reports no video replacement text")
        return out, replacement

    def _prefill(self, processed: Any, n: int, key: tuple[str, str]) -> Prefix:
        """Run the vision tower and the language model over the prefix once; keep its keys and values."""
        import torch

        inputs: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for name, value in processed.items():
            if not torch.is_tensor(value):
                continue
            if name in SEQUENCE_KEYS:
                inputs[name] = value[:, :n].to(self.device)
            elif name.startswith("pixel_values"):
                value = value.to(self.device)
                inputs[name] = value.to(self.dtype) if value.is_floating_point() else value
            else:
                inputs[name] = value.to(self.device)
                meta[name] = value
        with torch.inference_mode():
            out = self.model(**inputs, use_cache=True, logits_to_keep=1, return_dict=True)
        self.stats.vision_encodes += 1
        self.stats.prefix_misses += 1
        self.stats.prefill_tokens += n
        ids = processed["input_ids"][0, :n].tolist()
        return Prefix(key=key, ids=ids, layers=kv_layers(out.past_key_values), meta=meta)

    def _assemble(self, rows: list[_Row], torch: Any) -> dict[str, Any]:
        from transformers import DynamicCache

        b = len(rows)
        p_max = max(len(r.prefix) for r in rows)
        s_max = max(len(r.ids) - len(r.prefix) for r in rows)
        input_ids = torch.full((b, p_max + s_max), self.pad_id, dtype=torch.long)
        mask = torch.zeros((b, p_max + s_max), dtype=torch.long)
        for i, r in enumerate(rows):
            n, own = len(r.prefix), r.ids[len(r.prefix):]
            input_ids[i, p_max - n : p_max] = torch.tensor(r.ids[:n])
            mask[i, p_max - n : p_max] = 1
            input_ids[i, p_max + s_max - len(own) :] = torch.tensor(own)
            mask[i, p_max + s_max - len(own) :] = 1
            self.stats.prefill_tokens += len(own)
            self.stats.prefill_pad_tokens += s_max - len(own)
        mm_types = torch.tensor(self.processor.create_mm_token_type_ids(input_ids.tolist()), dtype=torch.long)
        meta_keys = sorted(rows[0].prefix.meta)
        if any(sorted(r.prefix.meta) != meta_keys for r in rows):
            raise PrefixUnsupported("videos of one batch carry different processor outputs")
        meta = {k: torch.cat([r.prefix.meta[k] for r in rows]).to(self.device) for k in meta_keys}
        input_ids, mask, mm_types = input_ids.to(self.device), mask.to(self.device), mm_types.to(self.device)
        position_ids = self.model._prepare_position_ids_for_generation(
            input_ids, {"input_ids": input_ids, "attention_mask": mask, "mm_token_type_ids": mm_types, **meta}
        )
        layers = []
        for layer in range(len(rows[0].prefix.layers)):
            k0, v0 = rows[0].prefix.layers[layer]
            keys = k0.new_zeros((b, k0.shape[1], p_max, k0.shape[3]))
            values = v0.new_zeros((b, v0.shape[1], p_max, v0.shape[3]))
            for i, r in enumerate(rows):
                k, v = r.prefix.layers[layer]
                keys[i, :, p_max - len(r.prefix) :] = k[0]
                values[i, :, p_max - len(r.prefix) :] = v[0]
            layers.append((keys, values))
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": position_ids,
            "past_key_values": DynamicCache(ddp_cache_data=layers),
        }

"""Which layers get LoRA: found by walking the model, never by guessing names.

The paper trained with ms-swift, whose LoRA default is `all-linear` with the vision tower and the
multimodal projector frozen: every `nn.Linear` of the language model (attention and MLP), not
`lm_head`. Module names differ per architecture (`language_model` in Qwen2/2.5/3-VL, InternVL and
LLaVA-OneVision, `text_model` in SmolVLM/Idefics3, `q_proj` in both the language model and SigLIP or
InternViT), so one regex cannot say "the language model". Instead the language model is the module
transformers itself returns from `get_decoder()`, and its Linear layers are listed by walking it.

`find_lora_targets(model, spec)` is a pure function of the model's structure (a model built on the
meta device is enough); the exact module names it returns go to PEFT as a list.

| spec | targets |
|---|---|
| `all-linear` (default) | every `nn.Linear` inside the language model, except the output head |
| `attention` | the Linear layers inside the language model's attention blocks (q/k/v/o) |
| anything else | a regex matched against whole module names (as PEFT does), Linear layers only |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from videosavi.errors import ConfigError

ALL_LINEAR = "all-linear"
ATTENTION = "attention"
MODES = (ALL_LINEAR, ATTENTION)
OPTION = "--lora-targets"
# Attribute names under which decoder layers keep their attention block (Llama/Qwen: self_attn).
_ATTENTION_ATTRS = frozenset({"self_attn", "attn", "attention", "self_attention", "cross_attn"})
_EXAMPLES = 8


@dataclass(frozen=True)
class LoraTargets:
    """The modules LoRA goes on, and how they were chosen (for train.json and the model card)."""

    spec: str  # what was asked: all-linear, attention or a regex
    names: tuple[str, ...]  # exact module names, in model order
    scope: str  # the language model's module name ("" for a regex over the whole model)

    @property
    def mode(self) -> str:
        return self.spec if self.spec in MODES else "regex"

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def leaf_names(self) -> tuple[str, ...]:
        """Distinct last name parts in first-seen order: `q_proj, k_proj, ..., down_proj`."""
        return tuple(dict.fromkeys(n.rsplit(".", 1)[-1] for n in self.names))

    def summary(self) -> str:
        """One line: `all-linear: 14 modules (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)`."""
        label = self.spec if self.mode != "regex" else f"regex {self.spec!r}"
        return f"{label}: {self.count} modules ({', '.join(self.leaf_names)})"

    def describe(self) -> str:
        """What the targets are in words, for the model card's method line."""
        if self.mode == ALL_LINEAR:
            return "every linear layer of the language model (attention and MLP; ms-swift's all-linear)"
        if self.mode == ATTENTION:
            return "the language model's attention projections"
        return f"the linear layers matching {self.spec!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "mode": self.mode, "count": self.count, "leaf_names": list(self.leaf_names),
                "scope": self.scope}


def check_spec(spec: str) -> str:
    """`spec` if it is a mode or a valid regex; else a ConfigError naming the option (no model needed)."""
    if not spec or not spec.strip():
        raise ConfigError(f"{OPTION} is empty: use {ALL_LINEAR} (the paper's), {ATTENTION}, or a regex")
    if spec in MODES:
        return spec
    try:
        re.compile(spec)
    except re.error as exc:
        raise ConfigError(f"{OPTION} {spec!r} is neither {ALL_LINEAR}, {ATTENTION} nor a valid regex: {exc}") from None
    return spec


def _linear_names(module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    import torch

    lead = f"{prefix}." if prefix else ""
    return [(lead + name, m) for name, m in module.named_modules() if name and isinstance(m, torch.nn.Linear)]


def language_model_of(model: Any) -> tuple[str, Any]:
    """(module name, module) of the language model, as transformers' `get_decoder()` names it.

    Every video model we support exposes it (`model.language_model`, `model.text_model`). A model
    whose decoder is the model itself has no separate vision part to protect, but we cannot tell
    that from a failed lookup, so it is refused with the way out (a regex).
    """
    get_decoder = getattr(model, "get_decoder", None)
    decoder = None
    if callable(get_decoder):
        try:
            decoder = get_decoder()
        except (AttributeError, NotImplementedError, ValueError):
            decoder = None
    name = next((n for n, m in model.named_modules() if m is decoder), None) if decoder is not None else None
    if not name:  # None: not found; "": the model itself
        examples = ", ".join(n for n, _ in _linear_names(model)[:_EXAMPLES])
        raise ConfigError(
            f"cannot find the language model of {type(model).__name__} (get_decoder() gives no submodule); "
            f"pass {OPTION} REGEX naming its linear layers, e.g. from: {examples}"
        )
    return name, decoder


def _output_heads(model: Any, decoder: Any) -> set[int]:
    """ids of the output projections (lm_head): never LoRA targets, whichever module holds them."""
    heads = set()
    for owner in (model, decoder):
        getter = getattr(owner, "get_output_embeddings", None)
        head = getter() if callable(getter) else None
        if head is not None:
            heads.add(id(head))
    return heads


def _is_attention(name: str, module: Any) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in _ATTENTION_ATTRS or "attention" in type(module).__name__.lower()


def _attention_scopes(decoder: Any, prefix: str) -> list[str]:
    """Names of the outermost attention blocks inside the language model."""
    scopes: list[str] = []
    for name, module in decoder.named_modules():
        if not name or any(name.startswith(s + ".") for s in scopes):
            continue
        if _is_attention(name, module):
            scopes.append(name)
    return [f"{prefix}.{s}" for s in scopes]


def example_names(model: Any, limit: int = _EXAMPLES) -> list[str]:
    """A few Linear module names for error messages: one per shape (layer numbers aside), taken in
    turn from each part of the model (vision tower, projector, language model, head), so the
    language model's names show even when a large vision tower comes first."""
    parts: dict[str, dict[str, str]] = {}
    for name, _ in _linear_names(model):
        part = ".".join(name.split(".")[:2])
        parts.setdefault(part, {}).setdefault(re.sub(r"\.\d+(?=\.|$)", ".N", name), name)
    queues = [list(shapes.values()) for shapes in parts.values()]
    out: list[str] = []
    while len(out) < limit and any(queues):
        for queue in queues:
            if queue and len(out) < limit:
                out.append(queue.pop(0))
    return out


def find_lora_targets(model: Any, spec: str = ALL_LINEAR) -> LoraTargets:
    """The Linear modules `spec` selects; a ConfigError when it selects none."""
    check_spec(spec)
    if spec in MODES:
        scope, decoder = language_model_of(model)
        heads = _output_heads(model, decoder)
        linears = [(n, m) for n, m in _linear_names(decoder, scope) if id(m) not in heads]
        if spec == ATTENTION:
            blocks = _attention_scopes(decoder, scope)
            linears = [(n, m) for n, m in linears if any(n.startswith(b + ".") for b in blocks)]
        names = tuple(n for n, _ in linears)
    else:
        pattern = re.compile(spec)
        scope = ""
        names = tuple(n for n, _ in _linear_names(model) if pattern.fullmatch(n))
    if not names:
        where = f"the language model ({scope})" if scope else f"{type(model).__name__}"
        raise ConfigError(
            f"{OPTION} {spec!r} matches no linear layer of {where} (a regex must match the whole module name); "
            f"linear layers that exist: {', '.join(example_names(model))}"
        )
    return LoraTargets(spec=spec, names=names, scope=scope)

"""The original InternVL config.json (`InternVLChatConfig`: `llm_config` + `vision_config` + image
settings) -> the native `InternVLConfig` arguments and the processor's settings.

Pure: dicts in, a `ConversionPlan` out, `ConfigError` naming the file and key for anything that
would not mean the same in the native classes. Values the native classes do not use (generation
defaults, flash-attention switches, the remote-code `auto_map`, ...) are dropped and listed in the
plan, so the conversion record says what was left behind.

Facts carried over (from the original configuration/modeling code): InternLM2's `bias` covers q, k, v
and o; its `rope_scaling` is `{"type": "linear"|"dynamic", "factor": f}` with the same formulas as
transformers' `linear` and `dynamic` rope types; `InternVLChatConfig` always unties the embeddings;
InternViT's defaults are `qkv_bias=False`, `qk_normalization=True`, `norm_type="rms_norm"`; the
image tile is `force_image_size` (else the vision `image_size`), and each tile gives
(tile / patch)^2 * downsample_ratio^2 tokens after pixel shuffle `ps_version="v2"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videosavi.builders.generate.models.internvl_convert.fused import GroupedQueryLayout
from videosavi.builders.generate.models.internvl_convert.keys import TextArch
from videosavi.errors import ConfigError

ORIGINAL_ARCHITECTURE = "InternVLChatModel"
ORIGINAL_MODEL_TYPE = "internvl_chat"
SUPPORTED_TEMPLATE = "internvl2_5"

_TEXT_ARCHES: dict[str, TextArch] = {
    "InternLM2ForCausalLM": "internlm2",
    "internlm2": "internlm2",
    "Qwen2ForCausalLM": "qwen2",
    "qwen2": "qwen2",
}
NATIVE_TEXT_MODEL_TYPE: dict[TextArch, str] = {"internlm2": "llama", "qwen2": "qwen2"}

_TEXT_COMMON = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "initializer_range",
    "rms_norm_eps",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "attention_dropout",
)
_QWEN2_ONLY = ("use_sliding_window", "sliding_window", "max_window_layers")
_TEXT_CONSUMED = (
    "architectures", "model_type", "bias", "rope_theta", "rope_scaling", "tie_word_embeddings", "use_cache"
)
_VISION_COPIED = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "initializer_range",
    "attention_dropout",
)
_VISION_CONSUMED = ("norm_type", "qkv_bias", "qk_normalization", "dropout", "architectures", "model_type")
_TOP_CONSUMED = (
    "architectures",
    "model_type",
    "llm_config",
    "vision_config",
    "downsample_ratio",
    "ps_version",
    "select_layer",
    "template",
    "force_image_size",
    "dynamic_image_size",
    "use_thumbnail",
    "min_dynamic_patch",
    "max_dynamic_patch",
    "use_backbone_lora",
    "use_llm_lora",
    "torch_dtype",
)


# Upper bounds on config sizes, far above any released checkpoint (InternVL2.5-78B: 80 layers, hidden 8192,
# vocab 152K) and far below what would make building the model hang or overflow.
SIZE_LIMITS: dict[str, int] = {
    "vocab_size": 1 << 22,
    "hidden_size": 1 << 16,
    "intermediate_size": 1 << 18,
    "num_hidden_layers": 1024,
    "num_attention_heads": 1024,
    "num_key_value_heads": 1024,
    "max_position_embeddings": 1 << 24,
    "image_size": 8192,
    "patch_size": 1024,
}
MAX_PATCHES = 256


@dataclass(frozen=True)
class ConversionPlan:
    """Everything the writer needs from config.json; `image_token_id` comes from the tokenizer."""

    text_arch: TextArch
    text_config: dict[str, Any]
    vision_config: dict[str, Any]
    downsample_ratio: float
    vision_feature_layer: int
    dtype: str | None
    image_size: int
    image_seq_length: int
    crop_to_patches: bool
    min_patches: int
    max_patches: int
    attention: GroupedQueryLayout
    ignored_keys: dict[str, list[str]] = field(default_factory=dict)

    def internvl_config(self, image_token_id: int) -> dict[str, Any]:
        """Keyword arguments of the native `InternVLConfig`."""
        return {
            "text_config": dict(self.text_config),
            "vision_config": dict(self.vision_config),
            "image_token_id": image_token_id,
            "image_seq_length": self.image_seq_length,
            "downsample_ratio": self.downsample_ratio,
            "projector_hidden_act": "gelu",
            "vision_feature_layer": self.vision_feature_layer,
            "vision_feature_select_strategy": "default",  # drop the CLS token, as the original does
            "tie_word_embeddings": False,
        }


def _section(cfg: dict[str, Any], key: str, origin: str) -> dict[str, Any]:
    value = cfg.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: {key} is missing or not an object; not an original InternVL config")
    return value


def _arch_name(sub: dict[str, Any]) -> str | None:
    archs = sub.get("architectures") or []
    return archs[0] if archs else sub.get("model_type")


def check_is_internvl(cfg: dict[str, Any], origin: str) -> None:
    """Refuse anything that is not an original InternVL chat checkpoint, naming what it is."""
    archs = cfg.get("architectures") or []
    model_type = cfg.get("model_type")
    if model_type == "internvl":
        raise ConfigError(f"{origin}: model_type is 'internvl', already the native layout; load it directly")
    if ORIGINAL_ARCHITECTURE not in archs and model_type != ORIGINAL_MODEL_TYPE:
        raise ConfigError(
            f"{origin}: architectures {archs} / model_type {model_type!r} is not an original InternVL checkpoint "
            f"(expected {ORIGINAL_ARCHITECTURE!r}, model_type {ORIGINAL_MODEL_TYPE!r})"
        )


def _rope_parameters(llm: dict[str, Any], text_arch: TextArch, origin: str) -> dict[str, Any]:
    theta = float(llm.get("rope_theta", 10000.0))
    scaling = llm.get("rope_scaling")
    if not scaling:
        return {"rope_type": "default", "rope_theta": theta}
    if not isinstance(scaling, dict):
        raise ConfigError(f"{origin}: llm_config.rope_scaling must be an object, got {scaling!r}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if text_arch == "internlm2" and kind not in ("linear", "dynamic"):
        raise ConfigError(f"{origin}: llm_config.rope_scaling type {kind!r}; InternLM2 only has linear and dynamic")
    params = {k: v for k, v in scaling.items() if k not in ("type", "rope_type")}
    return {**params, "rope_type": kind, "rope_theta": theta}


def _text_config(llm: dict[str, Any], text_arch: TextArch, origin: str) -> tuple[dict[str, Any], GroupedQueryLayout]:
    out: dict[str, Any] = {"model_type": NATIVE_TEXT_MODEL_TYPE[text_arch]}
    for key in _TEXT_COMMON + (_QWEN2_ONLY if text_arch == "qwen2" else ()):
        if key in llm:
            out[key] = llm[key]
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if not isinstance(llm.get(key), int) or llm[key] <= 0:
            raise ConfigError(f"{origin}: llm_config.{key} is missing or not a positive integer")
        _check_size(llm, key, f"{origin}: llm_config")
    for key in ("num_key_value_heads", "max_position_embeddings"):
        if llm.get(key) is not None:
            _check_size(llm, key, f"{origin}: llm_config", positive=True)
    heads = int(llm["num_attention_heads"])
    kv_heads = int(llm.get("num_key_value_heads") or heads)
    hidden = int(llm["hidden_size"])
    if hidden % heads or heads % kv_heads:
        raise ConfigError(
            f"{origin}: llm_config hidden_size {hidden}, num_attention_heads {heads}, num_key_value_heads "
            f"{kv_heads} do not divide evenly"
        )
    out["num_key_value_heads"] = kv_heads
    out["rope_parameters"] = _rope_parameters(llm, text_arch, origin)
    out["tie_word_embeddings"] = False  # InternVLChatConfig unties them whatever llm_config says
    out["use_cache"] = True
    if text_arch == "internlm2":
        # InternLM2's one `bias` switch covers wqkv and wo; its MLP never has a bias.
        out["attention_bias"] = bool(llm.get("bias", False))
        out["mlp_bias"] = False
    return out, GroupedQueryLayout(heads, kv_heads, hidden // heads)


def _vision_config(vision: dict[str, Any], origin: str) -> dict[str, Any]:
    out = {key: vision[key] for key in _VISION_COPIED if key in vision}
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size",
                "patch_size"):
        if not isinstance(vision.get(key), int) or vision[key] <= 0:
            raise ConfigError(f"{origin}: vision_config.{key} is missing or not a positive integer")
        _check_size(vision, key, f"{origin}: vision_config")
    norm_type = vision.get("norm_type", "rms_norm")
    if norm_type not in ("layer_norm", "rms_norm"):
        raise ConfigError(f"{origin}: vision_config.norm_type {norm_type!r}; expected layer_norm or rms_norm")
    out.update(
        norm_type=norm_type,
        attention_bias=bool(vision.get("qkv_bias", False)),
        use_qk_norm=bool(vision.get("qk_normalization", True)),
        projection_dropout=vision.get("dropout", 0.0),
        hidden_dropout_prob=0.0,
        use_absolute_position_embeddings=True,
        use_mask_token=False,
        use_mean_pooling=True,  # no final norm after the encoder, as in InternViT
    )
    return out


def _check_size(section: dict[str, Any], key: str, where: str, positive: bool = False) -> None:
    """A size above what any real checkpoint has (with room) is refused before anything is built:
    `num_hidden_layers: 1000000000` would keep transformers building layers for minutes, and 10**12
    sizes overflow on the way."""
    value = section[key]
    if positive and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ConfigError(f"{where}.{key} is {str(value)[:40]}, not a positive integer")
    limit = SIZE_LIMITS.get(key)
    if limit is not None and value > limit:
        raise ConfigError(f"{where}.{key} is {value}, above {limit}, more than any real checkpoint has; "
                          "is this config.json damaged?")


def plan_conversion(cfg: dict[str, Any], origin: str = "config.json") -> ConversionPlan:
    """Map an original InternVL config.json (parsed) to a `ConversionPlan`; see the module docstring.
    A value of the wrong type anywhere is one `ConfigError` naming the file, never a traceback."""
    try:
        return _plan(cfg, origin)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        raise ConfigError(f"{origin}: a value has the wrong type or size ({type(exc).__name__}: "
                          f"{str(exc)[:120]})") from exc


def _plan(cfg: dict[str, Any], origin: str) -> ConversionPlan:
    check_is_internvl(cfg, origin)
    llm = _section(cfg, "llm_config", origin)
    vision = _section(cfg, "vision_config", origin)
    arch = _arch_name(llm)
    if arch not in _TEXT_ARCHES:
        raise ConfigError(
            f"{origin}: llm_config.architectures {arch!r} is not supported; "
            "InternLM2ForCausalLM (InternVL2.5-8B) and Qwen2ForCausalLM (InternVL3, small InternVL2.5) convert"
        )
    text_arch = _TEXT_ARCHES[arch]
    template = cfg.get("template")
    if template != SUPPORTED_TEMPLATE:
        raise ConfigError(f"{origin}: template {template!r}; only {SUPPORTED_TEMPLATE!r} (InternVL2.5 and 3) converts")
    ps_version = cfg.get("ps_version", "v1")
    if ps_version != "v2":
        raise ConfigError(f"{origin}: ps_version {ps_version!r}; the native model implements pixel shuffle v2 only")
    for key in ("use_backbone_lora", "use_llm_lora"):
        if cfg.get(key):
            raise ConfigError(f"{origin}: {key} is {cfg[key]!r}; merge the LoRA weights before converting")
    dynamic = bool(cfg.get("dynamic_image_size", False))
    if dynamic and not cfg.get("use_thumbnail", False):
        raise ConfigError(f"{origin}: dynamic_image_size without use_thumbnail has no native processor setting")
    ratio = float(cfg.get("downsample_ratio", 0.5))
    if ratio <= 0 or (1 / ratio) != int(1 / ratio):
        raise ConfigError(f"{origin}: downsample_ratio {ratio} must be 1/n")

    text_config, attention = _text_config(llm, text_arch, origin)
    vision_config = _vision_config(vision, origin)
    tile = int(cfg.get("force_image_size") or vision["image_size"])
    patch = int(vision["patch_size"])
    if not 0 < tile <= SIZE_LIMITS["image_size"]:
        raise ConfigError(f"{origin}: force_image_size {tile} must lie in 1..{SIZE_LIMITS['image_size']}")
    for key in ("min_dynamic_patch", "max_dynamic_patch"):
        if not 0 < int(cfg.get(key, 1)) <= MAX_PATCHES:
            raise ConfigError(f"{origin}: {key} {cfg.get(key)} must lie in 1..{MAX_PATCHES}")
    ignored = {
        "config.json": sorted(set(cfg) - set(_TOP_CONSUMED)),
        "llm_config": sorted(set(llm) - set(_TEXT_COMMON + _QWEN2_ONLY + _TEXT_CONSUMED)),
        "vision_config": sorted(set(vision) - set(_VISION_COPIED + _VISION_CONSUMED)),
    }
    return ConversionPlan(
        text_arch=text_arch,
        text_config=text_config,
        vision_config=vision_config,
        downsample_ratio=ratio,
        vision_feature_layer=int(cfg.get("select_layer", -1)),
        dtype=cfg.get("torch_dtype") or llm.get("torch_dtype"),
        image_size=tile,
        image_seq_length=int((tile // patch) ** 2 * ratio**2),
        crop_to_patches=dynamic,
        min_patches=int(cfg.get("min_dynamic_patch", 1)),
        max_patches=int(cfg.get("max_dynamic_patch", 12)) if dynamic else 1,
        attention=attention,
        ignored_keys=ignored,
    )

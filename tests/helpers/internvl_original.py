"""Tiny InternVL checkpoints in the *original* (remote-code) layout, written by the tests themselves.

No real checkpoint can be downloaded here, so the tests build a tiny native
`InternVLForConditionalGeneration` in code and invert the conversion by hand: InternViT names and a
fused `attn.qkv`, the `mlp1` projector, InternLM2 names with a fused `wqkv` in its grouped-query
order (or Qwen2 names), an `InternVLChatConfig`-style config.json with `llm_config` /
`vision_config`, and the original tokenizer files (a SentencePiece BPE `tokenizer.model` trained
here for InternLM2, `vocab.json` + `merges.txt` for Qwen2, and `tokenizer_config.json` with
InternVL's added tokens). The remote-code files are traps that raise if anything imports them.

This inverse is written independently of `videosavi.builders.generate.models.internvl_convert` (explicit
loops over layers instead of its regex tables), so a mistake in one is not mirrored in the other.

    orig = write_original(tmp_path / "orig", "internlm2", shards=2)
    orig.path, orig.model   # the folder, and the native model it was made from (fp32, eval)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from videosavi.builders.generate.models.tiny import _corpus

TextKind = Literal["internlm2", "qwen2"]
SEED = 1234
IMAGE = 32
PATCH = 4
IMAGE_SEQ = (IMAGE // PATCH) ** 2 // 4  # pixel shuffle 0.5 -> 16 tokens per tile
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
PLACEHOLDERS = {"[UNUSED_TOKEN_145]": "<|im_end|>", "[UNUSED_TOKEN_146]": "<|im_start|>"}
USER_DEFINED = "<|action_start|>"
INTERNVL_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
REMOTE_CODE = ("modeling_internvl_chat.py", "configuration_internvl_chat.py", "tokenization_internlm2.py")
EXTRA_TEXT = [
    "一个人走进厨房，拿起桌子上的红色杯子。视频中的人在做什么？",
    "def f(x):\n    return x ** 2  # indented code\n\ttab",
    "Numbers 0 12 345 6789 and 3.14159, café, naïve.",
]


@dataclass
class OriginalCheckpoint:
    path: Path
    model: Any  # the native model the original files were made from
    text: TextKind
    tokens: dict[str, int]  # token -> id in the original tokenizer


def _added_entry(content: str, special: bool = True) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False,
            "special": special}


def write_spm_tokenizer(folder: Path, *, add_dummy_prefix: bool = False,
                        remove_extra_whitespaces: bool = False) -> dict[str, int]:
    """An InternLM2-style tokenizer: SentencePiece BPE with byte fallback; the chat tokens sit on
    placeholder pieces of the model (`[UNUSED_TOKEN_145]`, `[UNUSED_TOKEN_146]`) that tokenizer_config.json
    renames, a user-defined piece stays as it is, and InternVL's tokens follow the model's pieces."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    text = _corpus() + EXTRA_TEXT * 4
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=480,
        model_type="bpe",
        byte_fallback=True,
        add_dummy_prefix=add_dummy_prefix,
        remove_extra_whitespaces=remove_extra_whitespaces,
        normalization_rule_name="identity",
        control_symbols=list(PLACEHOLDERS),
        user_defined_symbols=[USER_DEFINED],
        split_digits=True,
        allow_whitespace_only_pieces=True,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    (folder / "tokenizer.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    base = sp.get_piece_size()
    tokens = {sp.id_to_piece(i): i for i in range(3)} | {USER_DEFINED: sp.piece_to_id(USER_DEFINED)}
    tokens |= {chat: sp.piece_to_id(placeholder) for placeholder, chat in PLACEHOLDERS.items()}
    tokens |= {t: base + i for i, t in enumerate(INTERNVL_TOKENS)}
    config = {
        "added_tokens_decoder": {str(i): _added_entry(t) for t, i in sorted(tokens.items(), key=lambda x: x[1])},
        "additional_special_tokens": CHAT_TOKENS + INTERNVL_TOKENS,
        "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": 8192,
        "pad_token": "</s>",
        "tokenizer_class": "InternLM2Tokenizer",
        "unk_token": "<unk>",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return tokens


def write_qwen2_tokenizer(folder: Path) -> dict[str, int]:
    """A Qwen2-style tokenizer: byte-level BPE in vocab.json + merges.txt, added tokens after it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=480, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tk.train_from_iterator(_corpus() + EXTRA_TEXT * 4, trainer)
    bpe = json.loads(tk.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(bpe["vocab"], ensure_ascii=False), encoding="utf-8")
    merges = "".join(" ".join(pair) + "\n" for pair in bpe["merges"])
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")
    base = len(bpe["vocab"])
    added = ["<|endoftext|>", *CHAT_TOKENS, *INTERNVL_TOKENS]
    tokens = {t: base + i for i, t in enumerate(added)}
    config = {
        "added_tokens_decoder": {str(i): _added_entry(t) for t, i in tokens.items()},
        "additional_special_tokens": CHAT_TOKENS + INTERNVL_TOKENS,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 8192,
        "tokenizer_class": "Qwen2Tokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return tokens


def _vision_dict(text: TextKind) -> dict[str, Any]:
    # The InternLM2 variant looks like InternViT-300M (layer norm, qkv bias), the Qwen2 one like
    # InternViT-6B (RMS norm, q/k norm, no qkv bias), so both vision layouts are exercised.
    v = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             image_size=IMAGE, patch_size=PATCH, layer_norm_eps=1e-6, hidden_act="gelu")
    if text == "internlm2":
        return v | dict(norm_type="layer_norm", attention_bias=True, use_qk_norm=False)
    return v | dict(norm_type="rms_norm", attention_bias=False, use_qk_norm=True)


def _text_dict(text: TextKind, tokens: dict[str, int], vocab: int) -> dict[str, Any]:
    t = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False)
    if text == "internlm2":
        rope = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1_000_000.0}
        return t | dict(model_type="llama", attention_bias=True, rope_parameters=rope, bos_token_id=1, eos_token_id=2,
                        pad_token_id=2)
    return t | dict(model_type="qwen2", rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
                    eos_token_id=tokens["<|im_end|>"], pad_token_id=tokens["<|endoftext|>"])


def build_native(text: TextKind, tokens: dict[str, int]) -> Any:
    """A tiny native InternVL whose every parameter differs (norms and layer scales included), so a
    swapped or misplaced tensor changes the logits."""
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    vocab = max(tokens.values()) + 1
    cfg = InternVLConfig(
        vision_config=_vision_dict(text),
        text_config=_text_dict(text, tokens, vocab),
        image_token_id=tokens["<IMG_CONTEXT>"],
        image_seq_length=IMAGE_SEQ,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = InternVLForConditionalGeneration(cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def fuse_wqkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_heads: int, head_dim: int) -> torch.Tensor:
    """InternLM2's layout: for each kv head, its query heads, then its key head, then its value head."""
    groups = q.shape[0] // (kv_heads * head_dim)
    rows = []
    for h in range(kv_heads):
        for g in range(groups):
            head = h * groups + g
            rows.append(q[head * head_dim : (head + 1) * head_dim])
        rows.append(k[h * head_dim : (h + 1) * head_dim])
        rows.append(v[h * head_dim : (h + 1) * head_dim])
    return torch.cat(rows)


def original_state_dict(model: Any, text: TextKind) -> dict[str, torch.Tensor]:
    """The native weights under the original names, fused where the original fuses."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tc, vc = model.config.text_config, model.config.vision_config
    out: dict[str, torch.Tensor] = {}

    emb = "model.vision_tower.embeddings."
    out["vision_model.embeddings.class_embedding"] = sd.pop(emb + "cls_token")
    out["vision_model.embeddings.position_embedding"] = sd.pop(emb + "position_embeddings")
    for p in ("weight", "bias"):
        out[f"vision_model.embeddings.patch_embedding.{p}"] = sd.pop(emb + f"patch_embeddings.projection.{p}")
    for i in range(vc.num_hidden_layers):
        n, o = f"model.vision_tower.encoder.layer.{i}.", f"vision_model.encoder.layers.{i}."
        out[o + "ls1"], out[o + "ls2"] = sd.pop(n + "lambda_1"), sd.pop(n + "lambda_2")
        params = ("weight", "bias") if vc.attention_bias else ("weight",)
        for p in params:
            out[o + f"attn.qkv.{p}"] = torch.cat([sd.pop(n + f"attention.{x}_proj.{p}") for x in "qkv"])
        norm_params = ("weight", "bias") if vc.norm_type == "layer_norm" else ("weight",)
        for p in ("weight", "bias"):
            out[o + f"attn.proj.{p}"] = sd.pop(n + f"attention.projection_layer.{p}")
            out[o + f"mlp.fc1.{p}"] = sd.pop(n + f"mlp.fc1.{p}")
            out[o + f"mlp.fc2.{p}"] = sd.pop(n + f"mlp.fc2.{p}")
        for p in norm_params:
            out[o + f"norm1.{p}"] = sd.pop(n + f"layernorm_before.{p}")
            out[o + f"norm2.{p}"] = sd.pop(n + f"layernorm_after.{p}")
        if vc.use_qk_norm:
            out[o + "attn.q_norm.weight"] = sd.pop(n + "attention.q_norm.weight")
            out[o + "attn.k_norm.weight"] = sd.pop(n + "attention.k_norm.weight")
    for native, idx in (("layer_norm", 0), ("linear_1", 1), ("linear_2", 3)):
        for p in ("weight", "bias"):
            out[f"mlp1.{idx}.{p}"] = sd.pop(f"model.multi_modal_projector.{native}.{p}")

    lm = "model.language_model."
    head_dim = tc.hidden_size // tc.num_attention_heads
    if text == "internlm2":
        out["language_model.model.tok_embeddings.weight"] = sd.pop(lm + "embed_tokens.weight")
        out["language_model.model.norm.weight"] = sd.pop(lm + "norm.weight")
        out["language_model.output.weight"] = sd.pop("lm_head.weight")
        for i in range(tc.num_hidden_layers):
            n, o = f"{lm}layers.{i}.", f"language_model.model.layers.{i}."
            for p in ("weight", "bias"):
                q, k, v = (sd.pop(n + f"self_attn.{x}_proj.{p}") for x in "qkv")
                out[o + f"attention.wqkv.{p}"] = fuse_wqkv(q, k, v, tc.num_key_value_heads, head_dim)
                out[o + f"attention.wo.{p}"] = sd.pop(n + f"self_attn.o_proj.{p}")
            out[o + "feed_forward.w1.weight"] = sd.pop(n + "mlp.gate_proj.weight")
            out[o + "feed_forward.w3.weight"] = sd.pop(n + "mlp.up_proj.weight")
            out[o + "feed_forward.w2.weight"] = sd.pop(n + "mlp.down_proj.weight")
            out[o + "attention_norm.weight"] = sd.pop(n + "input_layernorm.weight")
            out[o + "ffn_norm.weight"] = sd.pop(n + "post_attention_layernorm.weight")
    else:
        for key in [k for k in sd if k.startswith(lm)]:
            out["language_model.model." + key[len(lm) :]] = sd.pop(key)
        out["language_model.lm_head.weight"] = sd.pop("lm_head.weight")
    assert not sd, f"inverse mapping left native tensors behind: {sorted(sd)}"
    return out


def original_config(model: Any, text: TextKind) -> dict[str, Any]:
    """An `InternVLChatConfig`-style config.json, with the clutter a real one carries."""
    tc, vc = model.config.text_config, model.config.vision_config
    generic = {"add_cross_attention": False, "do_sample": False, "temperature": 1.0, "top_p": 1.0,
               "torch_dtype": "float32", "transformers_version": "4.37.2", "use_bfloat16": False}
    llm = {
        **generic,
        "vocab_size": tc.vocab_size, "hidden_size": tc.hidden_size, "intermediate_size": tc.intermediate_size,
        "num_hidden_layers": tc.num_hidden_layers, "num_attention_heads": tc.num_attention_heads,
        "num_key_value_heads": tc.num_key_value_heads, "hidden_act": "silu",
        "max_position_embeddings": tc.max_position_embeddings, "rms_norm_eps": tc.rms_norm_eps,
        "initializer_range": 0.02, "tie_word_embeddings": False, "use_cache": True,
        "rope_theta": 1_000_000,
        "bos_token_id": tc.bos_token_id, "eos_token_id": tc.eos_token_id, "pad_token_id": tc.pad_token_id,
    }
    if text == "internlm2":
        llm |= {"_name_or_path": "internlm/internlm2_5-7b-chat", "architectures": ["InternLM2ForCausalLM"],
                "model_type": "internlm2", "bias": True, "rope_scaling": {"type": "dynamic", "factor": 2.0},
                "attn_implementation": "eager",
                "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config"}}
    else:
        llm |= {"_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct", "architectures": ["Qwen2ForCausalLM"],
                "model_type": "qwen2", "rope_scaling": None, "use_sliding_window": False, "sliding_window": 4096,
                "max_window_layers": tc.num_hidden_layers}
    vision = {
        "architectures": ["InternVisionModel"], "model_type": "intern_vit_6b",
        "hidden_size": vc.hidden_size, "num_hidden_layers": vc.num_hidden_layers,
        "num_attention_heads": vc.num_attention_heads, "intermediate_size": vc.intermediate_size,
        "image_size": IMAGE, "patch_size": PATCH, "num_channels": 3, "hidden_act": "gelu",
        "layer_norm_eps": vc.layer_norm_eps, "norm_type": vc.norm_type, "qkv_bias": vc.attention_bias,
        "qk_normalization": vc.use_qk_norm, "dropout": 0.0, "attention_dropout": 0.0, "drop_path_rate": 0.0,
        "initializer_factor": 1.0, "initializer_range": 0.02, "use_flash_attn": False, "torch_dtype": "float32",
    }
    return {
        "_name_or_path": f"tiny-internvl-{text}",
        "architectures": ["InternVLChatModel"],
        "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                     "AutoModel": "modeling_internvl_chat.InternVLChatModel"},
        "model_type": "internvl_chat",
        "downsample_ratio": 0.5, "dynamic_image_size": True, "force_image_size": IMAGE, "max_dynamic_patch": 6,
        "min_dynamic_patch": 1, "ps_version": "v2", "select_layer": -1, "template": "internvl2_5",
        "torch_dtype": "float32", "use_backbone_lora": 0, "use_llm_lora": 0, "use_thumbnail": True,
        "pad2square": False, "hidden_size": tc.hidden_size, "transformers_version": None,
        "llm_config": llm, "vision_config": vision,
    }


def write_weights(folder: Path, state: dict[str, torch.Tensor], shards: int) -> list[Path]:
    """Safetensors like a hub checkpoint: one `model.safetensors`, or shards plus their index."""
    from safetensors.torch import save_file

    keys = list(state)
    if shards == 1:
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return [folder / "model.safetensors"]
    per = -(-len(keys) // shards)
    files, weight_map = [], {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k].contiguous() for k in keys[i * per : (i + 1) * per]}
        save_file(part, str(folder / name), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, name)
        files.append(folder / name)
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
             "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return files


def write_original(folder: Path, text: TextKind, shards: int = 1) -> OriginalCheckpoint:
    """The whole original checkpoint folder, plus the native model it encodes."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = write_spm_tokenizer(folder) if text == "internlm2" else write_qwen2_tokenizer(folder)
    model = build_native(text, tokens)
    write_weights(folder, original_state_dict(model, text), shards)
    (folder / "config.json").write_text(json.dumps(original_config(model, text), indent=2), encoding="utf-8")
    for name in REMOTE_CODE:
        (folder / name).write_text('raise RuntimeError("remote code was executed")\n', encoding="utf-8")
    return OriginalCheckpoint(folder, model, text, tokens)

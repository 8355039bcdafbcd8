"""`savi model convert`: original InternVL checkpoints -> transformers' native InternVL, no remote code.

The originals are tiny checkpoints the tests write in the original layout (tests/helpers/internvl_original.py)
from a native model built in code; the converted folder, loaded through the Auto classes, must give
that model's logits exactly, for both language models (InternLM2 -> Llama, Qwen2 -> Qwen2).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.internvl_original import (
    EXTRA_TEXT,
    IMAGE_SEQ,
    REMOTE_CODE,
    OriginalCheckpoint,
    fuse_wqkv,
    write_original,
    write_spm_tokenizer,
)
from videosavi.builders.generate.models.internvl_convert.chat_template import DEFAULT_SYSTEM_MESSAGE
from videosavi.builders.generate.models.internvl_convert.fused import GroupedQueryLayout, split_internlm2_wqkv
from videosavi.builders.generate.models.internvl_convert.tokenizer import PROBE_TEXTS, convert_tokenizer
from videosavi.cli import app
from videosavi.compat import ensure_torchvision_importable

ensure_torchvision_importable()
SHARDS = {"internlm2": 2, "qwen2": 1}


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OriginalCheckpoint]:
    root = tmp_path_factory.mktemp("internvl-original")
    return {text: write_original(root / text, text, shards=n) for text, n in SHARDS.items()}  # type: ignore[arg-type]


def _convert(src: Path | str, out: Path, *extra: str) -> object:
    return CliRunner().invoke(app, ["model", "convert", "--model", str(src), "--out", str(out), *extra])


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _video_inputs(processor, frames: int = 3, text: str = "What happens in the video?"):
    video = np.random.default_rng(7).integers(0, 256, (frames, 40, 40, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt, processor(text=[prompt], videos=[video], return_tensors="pt", input_data_format="channels_last",
                             do_sample_frames=False)


@pytest.mark.parametrize("text", list(SHARDS))
def test_converted_model_gives_the_native_logits(text: str, originals, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor, InternVLForConditionalGeneration

    orig = originals[text]
    assert all((orig.path / name).is_file() for name in REMOTE_CODE)  # traps that raise if imported
    out = tmp_path / "native"
    # A small shard limit makes the writer split the output into several shards plus an index.
    res = _convert(orig.path, out, "--max-shard-size", "200KB")
    assert res.exit_code == 0, res.output
    assert "converted" in res.output
    assert len(list(out.glob("model-*-of-*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()
    assert not any(out.glob("*.py")), "no remote code may travel into the converted folder"
    assert _leftovers(tmp_path) == []

    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    assert type(model) is InternVLForConditionalGeneration
    assert model.config.text_config.model_type == {"internlm2": "llama", "qwen2": "qwen2"}[text]
    assert "auto_map" not in json.loads((out / "config.json").read_text())

    _, inputs = _video_inputs(processor)
    ctx = orig.tokens["<IMG_CONTEXT>"]
    assert int((inputs["input_ids"] == ctx).sum()) == 3 * IMAGE_SEQ
    with torch.no_grad():
        converted = model(**inputs).logits
        native = orig.model(**inputs).logits
    diff = float((converted - native).abs().max())
    print(f"{text}: max |logit difference| = {diff}")
    assert torch.allclose(converted, native, rtol=0, atol=1e-6), diff

    # Text only (no pixels), a longer and different prompt: the language model alone must agree too.
    ids = processor.tokenizer(EXTRA_TEXT[0] + EXTRA_TEXT[1], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**ids).logits, orig.model(**ids).logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("text", list(SHARDS))
def test_prompt_tokens_and_generation_follow_the_original_chat(text: str, originals, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    orig = originals[text]
    out = tmp_path / "native"
    assert _convert(orig.path, out).exit_code == 0
    processor = AutoProcessor.from_pretrained(out)
    prompt, inputs = _video_inputs(processor, frames=2, text="Where is the cup?")
    bos = "<s>" if text == "internlm2" else ""
    assert prompt == (
        f"{bos}<|im_start|>system\n{DEFAULT_SYSTEM_MESSAGE}<|im_end|>\n"
        "<|im_start|>user\n<video>\nWhere is the cup?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = inputs["input_ids"][0].tolist()
    decoded = processor.tokenizer.decode(ids)
    frame = "<img>" + "<IMG_CONTEXT>" * IMAGE_SEQ + "</img>"
    assert f"user\nFrame1: {frame}\nFrame2: {frame}\nWhere is the cup?" in decoded
    if text == "internlm2":  # the original prepends BOS once; the tokenizer must not add a second
        assert ids[0] == orig.tokens["<s>"] and ids.count(orig.tokens["<s>"]) == 1
        assert processor.tokenizer("hi", add_special_tokens=True)["input_ids"] == processor.tokenizer(
            "hi", add_special_tokens=False)["input_ids"]
    two = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Same?"}]}]
    one = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
    assert "user\nImage-1: <IMG_CONTEXT>\nImage-2: <IMG_CONTEXT>\nSame?<|im_end|>" in processor.apply_chat_template(
        two, tokenize=False)
    assert "user\n<IMG_CONTEXT>\nWhat?<|im_end|>" in processor.apply_chat_template(one, tokenize=False)
    own_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert DEFAULT_SYSTEM_MESSAGE not in processor.apply_chat_template(own_system, tokenize=False)

    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    assert model.generation_config.eos_token_id == [orig.tokens["<|im_end|>"]]
    assert processor.tokenizer.eos_token == "<|im_end|>"
    gen = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert gen.shape[1] == inputs["input_ids"].shape[1] + 4


def test_converted_model_runs_in_the_transformers_backend(originals, tmp_path: Path) -> None:
    """What the conversion is for: the paper's backbone layout in the in-process backend, JSON grammar
    included (the tokenizer holds `<video>` past the model's vocabulary, which xgrammar must accept)."""
    from videosavi.builders.generate.models.base import GenerationRequest
    from videosavi.builders.generate.models.loader import load_backend
    from videosavi.config import model_config
    from videosavi.schemas import Critique
    from videosavi.schemas.json_schema import json_schema

    out = tmp_path / "native"
    assert _convert(originals["internlm2"].path, out).exit_code == 0
    backend = load_backend(model_config(backend="transformers", name_or_path=str(out), batch_size=4))
    try:
        assert backend.info.architecture == "internvl" and backend.info.revision.startswith("local:")
        assert len(backend.tokenizer) > backend.vocab_size
        frames = np.random.default_rng(3).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Critique it."}]}]
        schema = json_schema(Critique)
        results = backend.generate([
            GenerationRequest(frames=frames, messages=messages, temperature=0.9, top_p=0.95, max_new_tokens=30,
                              seed=s, json_schema=schema if s % 2 else None)
            for s in range(4)
        ])
    finally:
        backend.close()
    assert all(r.finish_reason in ("stop", "length") and r.error is None for r in results), results
    assert all(r.text.startswith('{"issues": [') for r in results[1::2]), [r.text for r in results]


def test_internlm2_tokenizer_matches_sentencepiece(originals, tmp_path: Path) -> None:
    import sentencepiece as spm
    from transformers import AutoTokenizer

    orig = originals["internlm2"]
    out = tmp_path / "native"
    assert _convert(orig.path, out).exit_code == 0
    tok = AutoTokenizer.from_pretrained(out)
    sp = spm.SentencePieceProcessor(model_file=str(orig.path / "tokenizer.model"))
    for text in [*EXTRA_TEXT, "A person walks  into\nthe kitchen.", "  x  ", "tabs\tand\r\n", "😀 ☕ 𝛼"]:
        assert tok.encode(text, add_special_tokens=False) == sp.encode(text), text
        assert tok.decode(sp.encode(text)) == sp.decode(sp.encode(text)).removeprefix(" "), text
    for token in ("<img>", "</img>", "<IMG_CONTEXT>", "<|im_start|>", "<|im_end|>", "<|action_start|>", "<box>"):
        assert tok.convert_tokens_to_ids(token) == orig.tokens[token], token
    # The chat tokens took over SentencePiece's placeholder pieces at the same ids.
    assert sp.id_to_piece(orig.tokens["<|im_end|>"]) == "[UNUSED_TOKEN_145]"
    assert "[UNUSED_TOKEN_145]" not in tok.get_vocab()
    record = json.loads((out / "videosavi-convert.json").read_text())
    assert any("[UNUSED_TOKEN_145] -> <|im_end|>" in note for note in record["tokenizer"])
    assert tok.decode([orig.tokens["<img>"], *sp.encode("red cup")], skip_special_tokens=True) == "red cup"


def test_added_tokens_from_a_legacy_added_tokens_json(originals, tmp_path: Path) -> None:
    """Older saves keep added tokens in added_tokens.json ({content: id}); they land on the same ids."""
    from transformers import AutoTokenizer

    orig = originals["internlm2"]
    src = tmp_path / "src"
    shutil.copytree(orig.path, src)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    legacy = {v["content"]: int(k) for k, v in cfg["added_tokens_decoder"].items() if int(k) >= 5}
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items() if int(k) < 5}
    (src / "tokenizer_config.json").write_text(json.dumps(cfg))
    (src / "added_tokens.json").write_text(json.dumps(legacy))
    assert _convert(src, tmp_path / "legacy").exit_code == 0
    assert _convert(orig.path, tmp_path / "plain").exit_code == 0
    legacy_tok, plain_tok = (AutoTokenizer.from_pretrained(tmp_path / n) for n in ("legacy", "plain"))
    text = "<|im_start|>user\n<img><IMG_CONTEXT></img>\nWhere is the cup?<|im_end|>"
    assert legacy_tok.encode(text) == plain_tok.encode(text)
    assert legacy_tok.convert_tokens_to_ids("<IMG_CONTEXT>") == orig.tokens["<IMG_CONTEXT>"]
    record = json.loads((tmp_path / "legacy" / "videosavi-convert.json").read_text())
    assert "added_tokens.json" in record["source_files_sha256"]


def test_qwen2_tokenizer_matches_the_original(originals, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, Qwen2Tokenizer

    orig = originals["qwen2"]
    out = tmp_path / "native"
    assert _convert(orig.path, out).exit_code == 0
    tok = AutoTokenizer.from_pretrained(out)
    original = Qwen2Tokenizer.from_pretrained(orig.path)
    for text in [*EXTRA_TEXT, *PROBE_TEXTS]:
        assert tok.encode(text, add_special_tokens=False) == original.encode(text, add_special_tokens=False), text
    for token, token_id in orig.tokens.items():
        assert tok.convert_tokens_to_ids(token) == token_id, token


@pytest.mark.parametrize("settings", [{"add_dummy_prefix": True, "remove_extra_whitespaces": True},
                                      {"add_dummy_prefix": True, "remove_extra_whitespaces": False}])
def test_other_sentencepiece_normalizer_settings_convert_exactly(settings: dict, tmp_path: Path) -> None:
    """InternLM2's model has neither option, but the rebuild follows whatever the model says."""
    import sentencepiece as spm

    write_spm_tokenizer(tmp_path, **settings)
    tok = convert_tokenizer(tmp_path, "internlm2", "{{ bos_token }}").tokenizer
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
    for text in [*EXTRA_TEXT, "  two  spaces  ", "x", " leading"]:
        assert tok.encode(text, add_special_tokens=False) == sp.encode(text), (settings, text)


def test_record_names_the_source_and_its_hashes(originals, tmp_path: Path) -> None:
    orig = originals["internlm2"]
    out = tmp_path / "native"
    assert _convert(orig.path, out).exit_code == 0
    record = json.loads((out / "videosavi-convert.json").read_text())
    shards = sorted(orig.path.glob("model-*.safetensors"))
    assert len(shards) == 2
    for f in [*shards, orig.path / "config.json", orig.path / "tokenizer.model", orig.path / "tokenizer_config.json"]:
        assert record["source_files_sha256"][f.name] == hashlib.sha256(f.read_bytes()).hexdigest(), f.name
    assert record["source"] == orig.path.name and record["source_revision"] is None
    assert record["language_model"] == {"original": "InternLM2ForCausalLM", "native": "llama"}
    # 2 ViT layers of 14, patch/position embeddings, mlp1, 2 InternLM2 layers of 9, embeddings/norm/output
    assert record["tensors"]["source"] == 2 * 14 + 4 + 6 + 2 * 9 + 3
    assert "auto_map" in record["ignored_config_keys"]["config.json"]
    assert json.loads((out / "config.json").read_text())["videosavi_convert"]["source_weights_sha256"] == (
        record["source_weights_sha256"])
    mask = os.umask(0)
    os.umask(mask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~mask) for p in out.iterdir())


def test_a_hub_id_is_read_from_the_local_cache_only(originals, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants as hub_constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--OpenGVLab--Tiny-InternVL"
    shutil.copytree(originals["qwen2"].path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    res = _convert("OpenGVLab/Tiny-InternVL", tmp_path / "out")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "out" / "videosavi-convert.json").read_text())
    assert (record["source"], record["source_revision"]) == ("OpenGVLab/Tiny-InternVL", commit)
    assert f"OpenGVLab/Tiny-InternVL@{commit}" in res.output

    res = _convert("OpenGVLab/Not-Cached", tmp_path / "out2")
    assert res.exit_code == 2
    assert "not in the local Hugging Face cache" in res.output and "hf download OpenGVLab/Not-Cached" in res.output
    assert not (tmp_path / "out2").exists()


def test_the_wqkv_split_reproduces_internlm2_attention() -> None:
    """The split checked against InternLM2's own reading of the fused output (reshape to
    (kv_heads, groups + 2, head_dim), queries first, then key, then value), not against our fuse.

    A split only moves rows, so the weights are compared exactly, row by row, against an index map
    written out from InternLM2's layout; the projections computed through them are float matmuls of
    different shapes (BLAS blocks them differently on each CPU), so those are compared with a tolerance.
    """
    layout = GroupedQueryLayout(num_heads=8, num_kv_heads=2, head_dim=4)
    gen = torch.Generator().manual_seed(0)
    wqkv = torch.randn(layout.fused_rows, 16, generator=gen)
    q, k, v = split_internlm2_wqkv(wqkv, layout)
    want_q, want_k, want_v = [], [], []
    for row in range(layout.fused_rows):  # fused row -> (kv head, slot in its group, dim)
        slot = (row // layout.head_dim) % (layout.groups + 2)
        (want_q if slot < layout.groups else want_k if slot == layout.groups else want_v).append(row)
    assert torch.equal(q, wqkv[want_q]) and torch.equal(k, wqkv[want_k]) and torch.equal(v, wqkv[want_v])

    x = torch.randn(5, 16, generator=gen)
    fused = (x @ wqkv.T).view(5, layout.num_kv_heads, layout.groups + 2, layout.head_dim)
    q_orig = fused[:, :, : layout.groups].reshape(5, layout.num_heads, layout.head_dim)
    k_orig, v_orig = fused[:, :, -2], fused[:, :, -1]
    torch.testing.assert_close((x @ q.T).view(5, layout.num_heads, layout.head_dim), q_orig)
    torch.testing.assert_close((x @ k.T).view(5, layout.num_kv_heads, layout.head_dim), k_orig)
    torch.testing.assert_close((x @ v.T).view(5, layout.num_kv_heads, layout.head_dim), v_orig)
    again = split_internlm2_wqkv(fuse_wqkv(q, k, v, 2, 4), layout)
    assert all(torch.equal(a, b) for a, b in zip(again, (q, k, v), strict=True))  # rows moved, never computed


# -- refusals: one line naming the file and the key, exit 2, nothing at OUT ---------------------------


def _add_tensor(folder: Path, name: str, tensor: torch.Tensor) -> None:
    from safetensors.torch import load_file, save_file

    shard = sorted(folder.glob("model*.safetensors"))[0]
    state = load_file(shard)
    state[name] = tensor
    save_file(state, str(shard), metadata={"format": "pt"})
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"][name] = shard.name
        index.write_text(json.dumps(data))


def _unknown_key(folder: Path) -> tuple[str, ...]:
    _add_tensor(folder, "vision_model.encoder.layers.0.attn.extra.weight", torch.zeros(2))
    return ("model-00001-of-00002.safetensors", "vision_model.encoder.layers.0.attn.extra.weight", "unknown")


def _wrong_shape(folder: Path) -> tuple[str, ...]:
    from safetensors.torch import load_file, save_file

    key = "language_model.model.layers.1.attention.wqkv.weight"
    shard = next(p for p in sorted(folder.glob("model-*.safetensors")) if key in load_file(p))
    state = load_file(shard)
    state[key] = state[key][:-16].clone()
    save_file(state, str(shard), metadata={"format": "pt"})
    return (shard.name, key, "[112, 64]", "[128, 64]")


def _missing_shard(folder: Path) -> tuple[str, ...]:
    (folder / "model-00002-of-00002.safetensors").unlink()
    return ("model-00002-of-00002.safetensors", "missing")


def _missing_tensor(folder: Path) -> tuple[str, ...]:
    from safetensors.torch import load_file, save_file

    shard = folder / "model-00002-of-00002.safetensors"
    state = load_file(shard)
    del state["language_model.output.weight"]
    save_file(state, str(shard), metadata={"format": "pt"})
    return (shard.name, "language_model.output.weight")


def _not_internvl(folder: Path) -> tuple[str, ...]:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(architectures=["LlamaForCausalLM"], model_type="llama")
    (folder / "config.json").write_text(json.dumps(cfg))
    return ("config.json", "LlamaForCausalLM", "not an original InternVL")


def _other_language_model(folder: Path) -> tuple[str, ...]:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["llm_config"]["architectures"] = ["Phi3ForCausalLM"]
    (folder / "config.json").write_text(json.dumps(cfg))
    return ("config.json", "llm_config.architectures", "Phi3ForCausalLM")


def _missing_tokenizer(folder: Path) -> tuple[str, ...]:
    (folder / "tokenizer.model").unlink()
    return ("tokenizer.model", "missing")


def _tokenizer_without_image_token(folder: Path) -> tuple[str, ...]:
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items()
                                   if v["content"] not in ("<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>",
                                                           "<box>", "</box>")}
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    return ("tokenizer_config.json", "<IMG_CONTEXT>")


REFUSALS = {
    "unknown key": _unknown_key,
    "wrong shape": _wrong_shape,
    "missing shard": _missing_shard,
    "missing tensor": _missing_tensor,
    "not InternVL": _not_internvl,
    "unsupported language model": _other_language_model,
    "missing tokenizer": _missing_tokenizer,
    "no image token": _tokenizer_without_image_token,
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_checkpoints_are_refused_and_leave_nothing(case: str, originals, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(originals["internlm2"].path, src)
    expected = REFUSALS[case](src)
    out = tmp_path / "models" / "native"
    res = _convert(src, out)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for part in expected:
        assert part in res.output, (part, res.output)
    assert "Traceback" not in res.output
    assert not out.exists()
    assert not out.parent.exists() or _leftovers(out.parent) == []


def test_out_is_only_replaced_with_force_and_only_by_a_complete_conversion(originals, tmp_path: Path) -> None:
    out = tmp_path / "native"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    res = _convert(originals["qwen2"].path, out)
    assert res.exit_code == 2 and "--overwrite" in res.output and (out / "keep.txt").is_file()

    broken = tmp_path / "broken"
    shutil.copytree(originals["internlm2"].path, broken)
    _wrong_shape(broken)
    assert _convert(broken, out, "--overwrite").exit_code == 2
    assert (out / "keep.txt").read_text() == "previous", "a failed --overwrite run must keep the old folder"

    res = _convert(originals["qwen2"].path, out, "--overwrite")  # --overwrite replaces only a conversion
    assert res.exit_code == 2 and "--overwrite replaces only what savi model convert wrote" in res.output, res.output
    assert (out / "keep.txt").read_text() == "previous"
    (out / "keep.txt").unlink()
    res = _convert(originals["qwen2"].path, out)
    assert res.exit_code == 0, res.output
    (out / "videosavi-convert.json").write_text("{}")  # an earlier conversion: replaced whole
    res = _convert(originals["qwen2"].path, out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "videosavi-convert.json").read_text())["format"]
    assert _leftovers(tmp_path) == []
    assert _convert(originals["qwen2"].path, tmp_path / "x", "--max-shard-size", "lots").exit_code == 2

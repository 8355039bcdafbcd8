"""Tiny in-code VLMs: built deterministically, saved like checkpoints, reloaded through the Auto classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from videosavi.builders.generate.models import tiny
from videosavi.builders.generate.models.tiny import (
    STRUCTURAL_BIAS,
    TINY_BUILDERS,
    build_tiny_model,
    ensure_tiny_model,
    structural_biases,
)
from videosavi.builders.generate.models.weights import local_revision, weights_hash
from videosavi.compat import ensure_torchvision_importable
from videosavi.errors import ModelError

NAMES = list(TINY_BUILDERS)


@pytest.fixture(scope="session")
def tiny_paths(videosavi_cache: str) -> dict[str, Path]:
    os.environ["VIDEOSAVI_CACHE"] = videosavi_cache
    return {name: ensure_tiny_model(name) for name in NAMES}


def _video(seed: int = 0, frames: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 64, 64, 3), dtype=np.uint8)


def _inputs(processor, video: np.ndarray, text: str = "What happens in the video?"):
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[prompt], videos=[video], return_tensors="pt", input_data_format="channels_last")


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_reloads_with_identical_logits(name: str, tiny_paths: dict[str, Path]) -> None:
    ensure_torchvision_importable()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    path = tiny_paths[name]
    for f in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json", tiny.MARKER_FILE):
        assert (path / f).is_file(), f
    built, built_proc = build_tiny_model(name)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    assert type(model) is type(built)
    assert type(processor) is type(built_proc)
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 400_000, n_params

    inputs = _inputs(processor, _video())
    with torch.no_grad():
        reloaded = model(**inputs).logits
        original = built(**_inputs(built_proc, _video())).logits
    # the weights round-trip exactly; the logits are computed floats, compared with a tolerance
    saved, built_state = model.state_dict(), built.state_dict()
    assert saved.keys() == built_state.keys() and all(torch.equal(saved[k], built_state[k]) for k in saved)
    torch.testing.assert_close(reloaded, original)

    out = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert new.shape[0] == 6
    assert int(new[0]) == int(original[0, -1].argmax())


def test_weights_are_the_same_in_a_fresh_process(tiny_paths: dict[str, Path], tmp_path: Path) -> None:
    """Same seed, same weights, same revision: what makes the weight hash a usable revision."""
    env = dict(os.environ, VIDEOSAVI_CACHE=str(tmp_path), PYTHONHASHSEED="123")
    code = (
        "from videosavi.builders.generate.models.tiny import ensure_tiny_model;"
        "from videosavi.builders.generate.models.weights import local_revision;"
        "print(local_revision(ensure_tiny_model('tiny-qwen2-vl')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == local_revision(tiny_paths["tiny-qwen2-vl"])
    tok_a = json.loads((tmp_path / "models" / "tiny-qwen2-vl" / "tokenizer.json").read_text())
    tok_b = json.loads((tiny_paths["tiny-qwen2-vl"] / "tokenizer.json").read_text())
    assert tok_a["model"]["vocab"] == tok_b["model"]["vocab"]


def test_architectures_differ(tiny_paths: dict[str, Path]) -> None:
    revisions = {weights_hash(p) for p in tiny_paths.values()}
    assert len(revisions) == len(tiny_paths)
    for name, path in tiny_paths.items():
        config = json.loads((path / "config.json").read_text())
        assert name == "tiny-" + config["model_type"].replace("_", "-")


def test_tokenizer_covers_json_and_words(tiny_paths: dict[str, Path]) -> None:
    ensure_torchvision_importable()
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(tiny_paths["tiny-qwen2-vl"]).tokenizer
    for ch in '{}[]":,0123456789.':
        assert len(tok.encode(ch, add_special_tokens=False)) == 1, ch
    for word in ["video", "person", "table", "frame", "critical", "minor", "answer", "summary"]:
        assert len(tok.encode(" " + word, add_special_tokens=False)) == 1, word
    for key in ["spatial", "temporal", "statement", "evidence", "severity"]:
        assert len(tok.encode(key, add_special_tokens=False)) == 1, key
    text = '{"issues": [], "summary": "ünïcode \\n ok 42"}'
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    # JSON shaped like the stages' output needs few tokens
    assert len(tok.encode('{"spatial": ["', add_special_tokens=False)) <= 4


def test_structural_bias_shifts_logits_as_documented(tiny_paths: dict[str, Path]) -> None:
    ensure_torchvision_importable()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_paths["tiny-qwen2-vl"]
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    with torch.no_grad():
        logits = model(**_inputs(processor, _video(3), "Some other words about a dog.")).logits[0, -5:]
    tok = processor.tokenizer
    median = logits.median(dim=-1).values
    quote = tok.convert_tokens_to_ids('"')
    offset = (logits[:, quote] - median).mean().item()
    assert abs(offset - STRUCTURAL_BIAS['"']) < 0.75, offset
    biases = structural_biases(tok)
    video_pad = tok.convert_tokens_to_ids("<|video_pad|>")
    assert biases[video_pad] < 0
    assert (logits[:, video_pad] < median - 10).all()


def test_ensure_is_idempotent_and_rebuilds_stale(
    tiny_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tiny_paths["tiny-internvl"]
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model("tiny-internvl") == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime

    monkeypatch.setenv("VIDEOSAVI_CACHE", str(tmp_path))
    fresh = ensure_tiny_model("tiny-internvl")
    rev = local_revision(fresh)
    monkeypatch.setattr(tiny, "RECIPE_VERSION", "stale-test")
    assert ensure_tiny_model("tiny-internvl") == fresh
    marker = json.loads((fresh / tiny.MARKER_FILE).read_text())
    assert marker["recipe_version"] == "stale-test"
    assert local_revision(fresh) == rev
    leftovers = [p.name for p in fresh.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_unknown_tiny_name_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="tiny-qwen2-vl"):
        ensure_tiny_model("tiny-gpt5")

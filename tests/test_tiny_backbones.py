"""Tiny versions of the paper's other backbones (Tables 4 and 6) that transformers has natively (issue 24):
Video-LLaVA, LLaVA-NeXT-Interleave and LLaVA-OneVision, Qwen2-VL, InternVL. Each is built in code, saved,
loaded back through the Auto classes a real checkpoint uses, and reads a video; each has the LMMs-Eval
wrapper `savi bench` runs it with. (InternVL2.5 1B and 4B have a Qwen2 language model, 2B an InternLM2 one:
both original layouts go through `savi model convert` in test_model_convert.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videosavi.builders.models.tiny import TINY_BUILDERS, ensure_tiny_model

# name -> (frames go in as, LMMs-Eval wrapper)
BACKBONES = {
    "tiny-qwen2-vl": ("video", "qwen2_vl"),
    "tiny-llava-onevision": ("video", "llava_hf"),
    "tiny-video-llava": ("video", "video_llava"),
    "tiny-llava-interleave": ("images", "llava_hf"),
    "tiny-internvl": ("video", "internvl_hf"),
}


def _frames(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_a_tiny_backbone_loads_through_the_auto_classes_and_reads_a_video(name: str) -> None:
    from videosavi.compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videosavi.workflows.bench.model_ref import resolve_model

    assert name in TINY_BUILDERS
    path = ensure_tiny_model(name)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    frames_as, wrapper = BACKBONES[name]
    block = [{"type": "video"}] if frames_as == "video" else [{"type": "image"}] * 8
    messages = [{"role": "user", "content": [*block, {"type": "text", "text": "What happens in the video?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    media = {"videos": [_frames()], "do_sample_frames": False} if frames_as == "video" else {"images": list(_frames())}
    inputs = processor(text=[text], padding=True, return_tensors="pt", **media)
    assert any(k.startswith("pixel_values") for k in inputs)
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4 or out.shape[1] > inputs["input_ids"].shape[1]
    assert resolve_model(str(path)).wrapper == wrapper


@pytest.mark.parametrize("name", ["tiny-video-llava", "tiny-llava-interleave"])
def test_the_new_backbones_have_text_heads_vllm_serves(name: str) -> None:
    import json

    config = json.loads((Path(ensure_tiny_model(name)) / "config.json").read_text(encoding="utf-8"))
    text = config["text_config"]
    assert text["hidden_size"] // text["num_attention_heads"] >= 32


def test_video_llava_builds_pairs_in_process(small_config: Path, demo_root: Path, tmp_path: Path) -> None:
    """The whole build (questions, answers, critiques, rewrites) with the tiny Video-LLaVA in process."""
    from videosavi.builders.runner import BuildOptions, run_build

    res = run_build(BuildOptions(config=small_config, data_root=demo_root, out=tmp_path / "run", limit_videos=1,
                                 model="tiny-video-llava"))
    assert res.info.model.name_or_path == "tiny-video-llava" and res.info.counts.pairs > 0
    assert res.model_stats["vision_encodes_per_video"] == 1.0  # the video is encoded once for all its calls

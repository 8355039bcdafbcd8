"""Tiny versions of the paper's other backbones (Tables 4 and 6) that transformers has natively (issue 24):
Video-LLaVA, LLaVA-OneVision (the video successor of LLaVA-NeXT-Interleave), Qwen2-VL, InternVL. Each is
built in code, saved, loaded back through the Auto classes a real checkpoint uses, and reads a video; each
has the LMMs-Eval wrapper `savi bench` runs it with. (InternVL2.5 1B and 4B have a Qwen2 language model,
2B an InternLM2 one: both original layouts go through `savi model convert` in test_model_convert.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videosavi.builders.generate.models.tiny import TINY_BUILDERS, ensure_tiny_model

# name -> the LMMs-Eval wrapper `savi bench` runs it with
BACKBONES = {"tiny-qwen2-vl": "qwen2_vl", "tiny-llava-onevision": "llava_hf", "tiny-video-llava": "video_llava",
             "tiny-internvl": "internvl_hf"}


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
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], videos=[_frames()], do_sample_frames=False, padding=True, return_tensors="pt")
    assert any(k.startswith("pixel_values") for k in inputs)
    out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4
    ref = resolve_model(str(path), frames=32)
    assert ref.wrapper == BACKBONES[name]
    assert ref.frames == (8 if name == "tiny-video-llava" else 32)  # Video-LLaVA is built for 8 frames


def test_the_new_backbone_has_text_heads_vllm_serves() -> None:
    import json

    config = json.loads((Path(ensure_tiny_model("tiny-video-llava")) / "config.json").read_text(encoding="utf-8"))
    text = config["text_config"]
    assert text["hidden_size"] // text["num_attention_heads"] >= 32


def test_video_llava_builds_pairs_in_process(small_config: Path, demo_root: Path, tmp_path: Path) -> None:
    """The whole build (questions, answers, critiques, rewrites) with the tiny Video-LLaVA in process."""
    from videosavi.builders.run.runner import BuildOptions, run_build

    res = run_build(BuildOptions(config=small_config, data_root=demo_root, out=tmp_path / "run", limit_videos=1,
                                 model="tiny-video-llava"))
    assert res.info.model.name_or_path == "tiny-video-llava" and res.info.counts.pairs > 0
    assert res.model_stats["vision_encodes_per_video"] == 1.0  # the video is encoded once for all its calls

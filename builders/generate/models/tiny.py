"""Tiny random-weight video VLMs of real architectures, built in code and saved like a checkpoint.

No weights can be downloaded on our machines, yet the demo and the tests must run the real machinery:
the architecture's processor, chat template, vision tower, `generate`, `save_pretrained` and loading
back through `AutoProcessor` + `AutoModelForImageTextToText`. So each tiny model is a real
transformers class with a few hundred thousand random parameters, a byte-level BPE tokenizer trained
in-process with `tokenizers`, and the architecture's default image/video processors sized for small
frames. Its text is meaningless; everything around it is real.

Reproducibility: the tokenizer corpus is fixed and the weights come from a fixed torch seed on CPU,
so every machine builds byte-identical weights. That matters because the hash of the weight files is
the model's revision (`local:<sha256>`), which enters provenance and the resume keys.

Build-time shaping (the one thing that is not plain random init): with uniform-ish random logits a
grammar-constrained JSON string only ends when the sampler happens to pick a quote, so strings run
to their `maxLength` and the JSON is cut off by `max_new_tokens`. To make the tiny models usable
for the demo we give a handful of tokens a fixed logit bias: every input embedding gets one constant
coordinate (`BIAS_DIM`), so the final hidden state always carries a near-constant positive value
there, and the output rows of the chosen tokens point along it. The effect is a per-token logit
offset of `STRUCTURAL_BIAS[token]`: the closing quote is favoured (strings end soon after their
minimum length), `{` is favoured over `]` right after `[` (critiques usually list issues) and `]`
over `,` after an issue (few issues), EOS and `.` end free text after a sentence or two, and the
special tokens other than EOS are pushed far down so free text never emits a video placeholder.
Real checkpoints are never touched by this.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videosavi.errors import ModelError
from videosavi.paths import models_dir

TINY_SEED = 20241208  # chosen with the head-size-32 layout: every architecture validates its JSON most often
# Bump when anything that changes the saved files changes, so stale caches are rebuilt.
RECIPE_VERSION = "3"
MARKER_FILE = "videosavi-tiny.json"
VOCAB_SIZE = 1024
HIDDEN = 64
# Two attention heads of 32: serving engines need a head size they have kernels for (vLLM's CPU attention
# takes 32, 64, 80 and up; 16 starts but kills the engine on the first request), and 32 is the smallest.
TEXT_HEADS = 2
BIAS_DIM = 0
EMBED_BIAS_VALUE = 1.0
# Logit offsets (at temperature 1) for structural tokens; see the module docstring.
STRUCTURAL_BIAS: dict[str, float] = {'"': 5.0, "{": 3.5, "]": 0.5, ".": 2.5}
EOS_BIAS = 3.5
SPECIAL_TOKEN_BIAS = -30.0

# Our own text: video-description vocabulary plus JSON shaped like the stages' outputs, so common
# words, the schema's keys and enum values become single tokens and JSON needs few steps.
_SENTENCES = [
    "A person walks into the kitchen and picks up a red cup from the table.",
    "The man opens the door, then he sits down on the chair near the window.",
    "Where is the lamp relative to the sofa at the start of the video?",
    "What does the woman hold in her left hand before she leaves the room?",
    "Which object is on the shelf above the television?",
    "What happens after the dog jumps onto the bed?",
    "How many people are standing next to the car when it stops?",
    "In what order does the person wash the dishes and dry their hands?",
    "The camera pans to the right while a child throws a ball across the yard.",
    "First the cook cuts the bread, next she puts butter on it, and finally she eats it.",
    "The answer says the cup is blue, but the cup in the video is clearly red.",
    "The answer misses that the person closes the laptop before standing up.",
    "The bottle is to the left of the plate, not behind it.",
    "Frames 3 to 5 show the box on the floor, which contradicts the claim.",
    "The refined answer keeps the correct details and fixes the wrong order of events.",
    "There is no dog in the video; the answer invents an animal that never appears.",
    "The person is sitting, so the claim that they run is a factual error.",
    "You are a careful assistant that looks at every frame of a video.",
    "system user assistant video frames question answer critique issue summary",
    "spatial temporal critical minor severity evidence reason statement",
    "0 1 2 3 4 5 6 7 8 9 10 12 16 20 24 32 first second third last frame",
]
_JSON_EXAMPLES: list[Any] = [
    {
        "spatial": ["Where is the cup?", "What is left of the lamp?", "What color is the door?"],
        "temporal": ["What happens first?", "What does he do next?", "What happens at the end?"],
    },
    {
        "issues": [
            {
                "statement": "the cup is blue",
                "reason": "the cup is red",
                "evidence": "frame 2 shows a red cup",
                "severity": "critical",
                "error_type": "factual_inaccuracy",
            },
            {
                "statement": "he sits before opening the door",
                "reason": "the order is reversed",
                "evidence": "frames 4 and 6",
                "severity": "minor",
                "error_type": "temporal_ordering",
            },
        ],
        "summary": "The answer gets the color and the order wrong.",
    },
    {
        "issues": [
            {
                "statement": "a dog is on the bed",
                "reason": "no dog appears",
                "evidence": "no frame shows a dog",
                "severity": "critical",
                "error_type": "object_hallucination",
            },
            {
                "statement": "the box is behind the chair",
                "reason": "it is beside it",
                "evidence": "frame 5",
                "severity": "minor",
                "error_type": "spatial_relationship",
            },
            {
                "statement": "she falls because of the ball",
                "reason": "she trips on the rug",
                "evidence": "frame 7",
                "severity": "minor",
                "error_type": "causal_reasoning",
            },
            {
                "statement": "the answer omits the second person",
                "reason": "two people are present",
                "evidence": "frames 1 to 3",
                "severity": "minor",
                "error_type": "detail_omission",
            },
        ],
        "summary": "Several details are wrong.",
    },
]


def _corpus() -> list[str]:
    docs = list(_SENTENCES)
    # The layout the grammar emits (", " and ": "), so its separators are single tokens. No example
    # has an empty issue list: a "[]," token would make empty critiques as likely as real ones.
    docs.extend(json.dumps(example) for example in _JSON_EXAMPLES)
    return docs * 8


def chatml_template(image_str: str, video_str: str) -> str:
    """ChatML with image/video placeholders; a system turn is added when the caller gives none."""
    return (
        "{% for message in messages %}"
        "{% if loop.first and message['role'] != 'system' %}"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
        "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
        "{% else %}{% for content in message['content'] %}"
        "{% if content['type'] == 'image' %}"
        + image_str
        + "{% elif content['type'] == 'video' %}"
        + video_str
        + "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def build_tokenizer(special_tokens: list[str], extra_special_tokens: dict[str, str], chat_template: str) -> Any:
    """Byte-level BPE trained on our fixed corpus: every byte is a token, so any text round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(_corpus(), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=extra_special_tokens,
    )
    tok.chat_template = chat_template
    return tok


def _text_config(tok: Any, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=TEXT_HEADS,
        num_key_value_heads=TEXT_HEADS,
        max_position_embeddings=4096,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    cfg.update(over)
    return cfg


_QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# 64x64 frames -> 56x56 (factor 28) -> 4x4 patches of 14 -> 2x2 merged tokens per 2 frames.
_QWEN_SIZE = {"shortest_edge": 56 * 56, "longest_edge": 64 * 64 * 4}


def _build_qwen2_vl() -> tuple[Any, Any]:
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    template = chatml_template(
        "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_start|><|video_pad|><|vision_end|>"
    )
    extra = {
        "image_token": "<|image_pad|>",
        "video_token": "<|video_pad|>",
        "vision_start_token": "<|vision_start|>",
        "vision_end_token": "<|vision_end|>",
    }
    tok = build_tokenizer(_QWEN_SPECIAL, extra, template)
    proc = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=_QWEN_SIZE),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(size=_QWEN_SIZE, cap_pixels_per_frame=False),
        chat_template=template,
    )
    # head_dim = 64 / 2 = 32, so the multimodal rope sections (time, height, width) must sum to 16.
    rope = {"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0}
    cfg = Qwen2VLConfig(
        text_config=_text_config(tok, rope_parameters=rope),
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=HIDDEN,
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    return Qwen2VLForConditionalGeneration(cfg), proc


def _build_llava_onevision() -> tuple[Any, Any]:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    template = chatml_template("<image>", "<video>")
    tok = build_tokenizer(special, {"image_token": "<image>", "video_token": "<video>"}, template)
    img, patch = 32, 8  # 16 tokens per image tile; a video frame pools to 2x2, plus one newline token
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    proc = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(
            size={"height": img, "width": img}, image_grid_pinpoints=pinpoints
        ),
        tokenizer=tok,
        video_processor=LlavaOnevisionVideoProcessor(size={"height": img, "width": img}),
        num_image_tokens=(img // patch) ** 2,
        vision_feature_select_strategy="full",
        chat_template=template,
    )
    cfg = LlavaOnevisionConfig(
        vision_config=dict(
            model_type="siglip_vision_model",
            image_size=img,
            patch_size=patch,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        text_config=dict(model_type="qwen2", **_text_config(tok)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=pinpoints,
        tie_word_embeddings=False,
    )
    return LlavaOnevisionForConditionalGeneration(cfg), proc


def _build_internvl() -> tuple[Any, Any]:
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
    extra = {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
    # The processor expands tokenizer.context_image_token as the image placeholder.
    template = chatml_template("<IMG_CONTEXT>", "<video>")
    tok = build_tokenizer(special, extra, template)
    img, patch = 32, 4  # 8x8 patches, pixel shuffle 0.5 -> 16 tokens per frame
    seq = int((img // patch) ** 2 * 0.25)
    proc = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size={"height": img, "width": img}, crop_to_patches=False),
        tokenizer=tok,
        video_processor=InternVLVideoProcessor(size={"height": img, "width": img}),
        image_seq_length=seq,
        chat_template=template,
    )
    cfg = InternVLConfig(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=img,
            patch_size=patch,
        ),
        text_config=dict(model_type="qwen2", **_text_config(tok)),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=seq,
        tie_word_embeddings=False,
    )
    return InternVLForConditionalGeneration(cfg), proc


TINY_BUILDERS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "tiny-qwen2-vl": _build_qwen2_vl,
    "tiny-internvl": _build_internvl,
    "tiny-llava-onevision": _build_llava_onevision,
}


# --- the other backbones of the paper's Table 4 that transformers has natively ------------------------------
# (Qwen2-VL, LLaVA-OneVision and InternVL are above.) Text heads of 32 dimensions (64 hidden, 2 heads), the
# smallest vLLM serves. LLaVA-NeXT-Interleave is a plain LLaVA whose processor has no video processor: it
# reads a video as images, which the in-process backend does not feed; LLaVA-OneVision is its video successor.


def _build_video_llava() -> tuple[Any, Any]:
    """Video-LLaVA: a CLIP tower that encodes each frame, a Llama language model; `<video>` expands to
    16 tokens per frame."""
    from transformers import (
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
        VideoLlavaProcessor,
        VideoLlavaVideoProcessor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    template = chatml_template("<image>", "<video>")
    tok = build_tokenizer(special, {"image_token": "<image>", "video_token": "<video>"}, template)
    img, patch = 32, 8  # 4x4 patches per frame (the CLS token is dropped: "default" feature selection)
    size, crop = {"shortest_edge": img}, {"height": img, "width": img}
    proc = VideoLlavaProcessor(
        image_processor=VideoLlavaImageProcessor(size=size, crop_size=crop),
        video_processor=VideoLlavaVideoProcessor(size=size, crop_size=crop),
        tokenizer=tok, patch_size=patch, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=template,
    )
    cfg = VideoLlavaConfig(
        vision_config=dict(model_type="clip_vision_model", image_size=img, patch_size=patch, hidden_size=32,
                           intermediate_size=64, num_hidden_layers=2, num_attention_heads=1, projection_dim=32),
        text_config=dict(model_type="llama", **_text_config(tok, num_attention_heads=2, num_key_value_heads=1)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
        image_seq_length=(img // patch) ** 2, video_seq_length=8 * (img // patch) ** 2, tie_word_embeddings=False,
    )
    return VideoLlavaForConditionalGeneration(cfg), proc


TINY_BUILDERS.update({"tiny-video-llava": _build_video_llava})

def is_tiny_name(name: str) -> bool:
    return name in TINY_BUILDERS


def structural_biases(tokenizer: Any) -> dict[int, float]:
    """Token id -> logit offset the tiny model is shaped to carry (see the module docstring)."""
    biases: dict[int, float] = {}
    for special_id in tokenizer.all_special_ids:
        biases[special_id] = SPECIAL_TOKEN_BIAS
    biases[tokenizer.eos_token_id] = EOS_BIAS
    vocab = tokenizer.get_vocab()
    for text, bias in STRUCTURAL_BIAS.items():
        pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode(text, add_special_tokens=False))
        if len(pieces) != 1 or pieces[0] not in vocab:
            raise ModelError(f"tiny tokenizer has no single token for {text!r}")
        biases[vocab[pieces[0]]] = bias
    return biases


def apply_structural_bias(model: Any, tokenizer: Any) -> None:
    """Turn one hidden coordinate into a constant and point the biased tokens' output rows along it.

    The final norm rescales the hidden state, so the constant's size after the norm is measured on a
    text prompt rather than assumed; the output rows are then set so that the logit offset equals the
    target bias. Every other output row gets 0 in that coordinate, so their logits stay random.
    """
    import torch

    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    if embed.data_ptr() == head.data_ptr():
        raise ModelError("tiny models need untied input/output embeddings")
    with torch.no_grad():
        embed[:, BIAS_DIM] = EMBED_BIAS_VALUE
        head[:, BIAS_DIM] = 0.0
        ids = torch.tensor([tokenizer.encode(" ".join(_SENTENCES[:4]), add_special_tokens=False)])
        hidden = model.model.language_model(input_ids=ids).last_hidden_state
        scale = float(hidden[0, :, BIAS_DIM].mean())
        if scale <= 0:
            raise ModelError("tiny model bias direction collapsed; change TINY_SEED")
        for token_id, bias in structural_biases(tokenizer).items():
            head[token_id, BIAS_DIM] = bias / scale


def build_tiny_model(name: str) -> tuple[Any, Any]:
    """(model, processor) for a tiny architecture; identical weights on every call and machine."""
    import torch

    from videosavi.compat import ensure_torchvision_importable

    if name not in TINY_BUILDERS:
        raise ModelError(f"unknown tiny model {name!r}; choose one of: {', '.join(TINY_BUILDERS)}")
    ensure_torchvision_importable()
    from transformers import GenerationConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model, processor = TINY_BUILDERS[name]()
    model.eval()
    tok = processor.tokenizer
    apply_structural_bias(model, tok)
    # Plain sampling defaults, so servers that honour the request's temperature (transformers serve
    # only switches sampling off) sample like a real chat checkpoint would.
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
    )
    return model, processor


def ensure_tiny_model(name: str) -> Path:
    """Path of the saved tiny model, building it once under `models_dir()/<name>`.

    Built in a temporary folder beside the target and renamed into place, so a crash or a concurrent
    builder never leaves a half-written model where loaders look.
    """
    if name not in TINY_BUILDERS:
        raise ModelError(f"unknown tiny model {name!r}; choose one of: {', '.join(TINY_BUILDERS)}")
    root = models_dir()
    target = root / name
    if _is_current(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        model, processor = build_tiny_model(name)
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / MARKER_FILE).write_text(
            json.dumps({"name": name, "recipe_version": RECIPE_VERSION, "seed": TINY_SEED}), encoding="utf-8"
        )
        if target.exists() and not _is_current(target):
            stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=root))
            os.replace(target, stale / name)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target):  # another process did not win the race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_current(path: Path) -> bool:
    marker = path / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("recipe_version") == RECIPE_VERSION
    except (OSError, ValueError):
        return False

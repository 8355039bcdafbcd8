"""One conversion, start to finish, into a temporary folder beside OUT that is renamed into place.

Nothing appears at OUT unless every step worked: a refused tensor, a tokenizer that does not match
its original, a full disk or Ctrl-C leave OUT as it was (absent, or the previous conversion when
replacing with `force`). The record `videosavi-convert.json` in OUT names the source (hub id and
cache commit, or folder name), the sha256 of every source file read and one combined hash of the
weight files, what was mapped to what, and which config keys were left behind; config.json carries
the source's name, revision and weight hash too, so a loaded model can say where it came from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.builders.generate.models.internvl_convert.chat_template import internvl_chat_template
from videosavi.builders.generate.models.internvl_convert.config_map import ConversionPlan, plan_conversion
from videosavi.builders.generate.models.internvl_convert.source import CONFIG_FILE, SourceCheckpoint, open_source
from videosavi.builders.generate.models.internvl_convert.tokenizer import (
    TURN_END,
    ConvertedTokenizer,
    convert_tokenizer,
    required_files,
)
from videosavi.builders.generate.models.internvl_convert.weight_stream import (
    DEFAULT_MAX_SHARD_BYTES,
    WeightStats,
    convert_weights,
    native_shapes,
)
from videosavi.builders.generate.models.weights import combine_file_hashes
from videosavi.errors import ModelError
from videosavi.hashing import sha256_file
from videosavi.out_guard import check_apart, check_replaceable, replace_folder

RECORD_FILE = "videosavi-convert.json"
COMMAND = "savi model convert"
# What a conversion writes (a conversion made before markers is recognised by its record file).
OUT_ENTRIES = ("*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "tokenizer*")
RECORD_FORMAT = "videosavi-convert/1"
# ImageNet statistics: InternVL normalizes tiles and video frames with these, not CLIP's.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ConvertResult:
    out: Path
    record: dict[str, Any]
    seconds: float


def _processor(plan: ConversionPlan, tok: ConvertedTokenizer, chat_template: str) -> Any:
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    size = {"height": plan.image_size, "width": plan.image_size}
    image_processor = GotOcr2ImageProcessor(
        size=size,
        crop_to_patches=plan.crop_to_patches,
        min_patches=plan.min_patches,
        max_patches=plan.max_patches,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    # A video frame is one tile, as in the original video chat (dynamic tiling with at most 1 patch).
    video_processor = InternVLVideoProcessor(size=size, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    return InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tok.tokenizer,
        video_processor=video_processor,
        image_seq_length=plan.image_seq_length,
        chat_template=chat_template,
    )


def _check_vocabulary(plan: ConversionPlan, tok: ConvertedTokenizer, origin: Path) -> int:
    vocab = int(plan.text_config["vocab_size"])
    turn_end = int(tok.tokenizer.convert_tokens_to_ids(TURN_END))
    for name, token_id in (("<IMG_CONTEXT>", tok.image_token_id), (TURN_END, turn_end)):
        if token_id >= vocab:
            raise ModelError(f"{origin}: {name} is token {token_id}, outside llm_config.vocab_size {vocab}")
    return turn_end


def _source_hashes(source: SourceCheckpoint, tokenizer_files: list[Path]) -> tuple[dict[str, str], dict[str, str]]:
    weights = {p.name: sha256_file(p) for p in source.shards}
    others = {p.name: sha256_file(p) for p in [source.root / CONFIG_FILE, *tokenizer_files]}
    return weights, others


def _record(source: SourceCheckpoint, plan: ConversionPlan, tok: ConvertedTokenizer, stats: WeightStats,
            weight_hashes: dict[str, str], other_hashes: dict[str, str]) -> dict[str, Any]:
    import transformers

    llm = source.config.get("llm_config", {})
    return {
        "format": RECORD_FORMAT,
        "source": source.label,
        "source_revision": source.revision,
        "source_name_or_path": source.config.get("_name_or_path"),
        "source_llm": llm.get("_name_or_path"),
        "source_weights_sha256": combine_file_hashes(dict(sorted(weight_hashes.items()))),
        "source_files_sha256": {**weight_hashes, **other_hashes},
        "language_model": {"original": (llm.get("architectures") or [plan.text_arch])[0],
                           "native": plan.text_config["model_type"]},
        "image_token_id": tok.image_token_id,
        "image_seq_length": plan.image_seq_length,
        "tensors": {"source": stats.source_tensors, "native": stats.native_tensors, "dropped": list(stats.dropped)},
        "dtypes": list(stats.dtypes),
        "files": list(stats.files),
        "tokenizer": tok.notes,
        "ignored_config_keys": plan.ignored_keys,
        "transformers_version": transformers.__version__,
    }


def _write(source: SourceCheckpoint, plan: ConversionPlan, tmp: Path, max_shard_bytes: int) -> dict[str, Any]:
    from transformers import GenerationConfig, InternVLConfig

    chat_template = internvl_chat_template(with_bos=plan.text_arch == "internlm2")
    tokenizer_files = required_files(source.root, plan.text_arch)
    tok = convert_tokenizer(source.root, plan.text_arch, chat_template)
    turn_end = _check_vocabulary(plan, tok, source.root / "tokenizer_config.json")
    config = InternVLConfig(**plan.internvl_config(tok.image_token_id))
    config.architectures = ["InternVLForConditionalGeneration"]
    if plan.dtype:
        config.dtype = plan.dtype
    weight_hashes, other_hashes = _source_hashes(source, tokenizer_files)
    stats = convert_weights(source, plan.text_arch, plan.attention, native_shapes(config), tmp, max_shard_bytes)
    record = _record(source, plan, tok, stats, weight_hashes, other_hashes)
    config.videosavi_convert = {
        k: record[k] for k in ("format", "source", "source_revision", "source_weights_sha256")
    }
    config.save_pretrained(tmp)
    GenerationConfig(
        bos_token_id=tok.tokenizer.bos_token_id,
        eos_token_id=[turn_end],  # the original chat stops at the end of the assistant's turn
        pad_token_id=tok.tokenizer.pad_token_id,
    ).save_pretrained(tmp)
    _processor(plan, tok, chat_template).save_pretrained(tmp)
    (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def _readable_like_any_file(folder: Path) -> None:
    """Give the folder and its files the modes the umask allows: the temporary folder is private
    (0700) and safetensors writes 0600 files, which other users of a shared model folder cannot read."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~mask)
    folder.chmod(0o777 & ~mask)


def convert_internvl(
    src: str,
    out: str | Path,
    *,
    revision: str | None = None,
    force: bool = False,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> ConvertResult:
    """Convert the original InternVL checkpoint at `src` (folder or cached hub id) into `out`."""
    from videosavi.compat import ensure_torchvision_importable

    started = time.perf_counter()
    out = Path(out).expanduser()
    if Path(src).expanduser().is_dir():  # a folder: before anything else, OUT must not be, hold or lie in it
        check_apart(out, {"source checkpoint": Path(src).expanduser()})
    check_replaceable(out, COMMAND, force=force, flag="--overwrite", owned=OUT_ENTRIES, legacy=RECORD_FILE)
    source = open_source(src, revision)
    check_apart(out, {"source checkpoint": source.root})  # a hub id's cache snapshot
    plan = plan_conversion(source.config, origin=str(source.root / CONFIG_FILE))
    required_files(source.root, plan.text_arch)
    ensure_torchvision_importable()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-convert-", dir=out.parent))
    try:
        record = _write(source, plan, tmp, max_shard_bytes)
        _readable_like_any_file(tmp)
        replace_folder(tmp, out, COMMAND)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ConvertResult(out=out, record=record, seconds=time.perf_counter() - started)

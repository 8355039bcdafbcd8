"""Load the policy, put LoRA on its language model, and write the adapter and the merged model.

Everything goes through `AutoProcessor` + `AutoModelForImageTextToText`, the same classes the
builder's transformers backend loads, so the merged folder is directly a `--model` for the next
`savi-build --iteration`. Tiny model names (`tiny-qwen2-vl`, ...) resolve to their saved folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videosavi.errors import ModelError


def resolve_model_source(model: str) -> str:
    """A local folder or hub id as given; a tiny model name -> its saved folder (built once)."""
    from videosavi.builders.generate.models.tiny import ensure_tiny_model, is_tiny_name

    if is_tiny_name(model) and not Path(model).exists():
        return str(ensure_tiny_model(model))
    return model


def model_revision_of(source: str, revision: str | None) -> str:
    """The weights' identity for lineage: `local:<hash>` for a folder (as the builder records it)."""
    if Path(source).is_dir():
        from videosavi.builders.generate.models.weights import local_revision

        return local_revision(source)
    return revision or "main"


def load_policy(source: str, *, revision: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """(model, processor) through the Auto classes; a clear `ModelError` when it cannot load."""
    from videosavi.builders.generate.models.weights import load_pretrained

    model, processor = load_pretrained(source, revision, dtype)
    if getattr(processor, "tokenizer", None) is None:
        raise ModelError(f"{source} has no tokenizer in its processor; is it a vision-language model?")
    return model, processor


def model_skeleton(source: str, *, revision: str | None = None) -> Any | None:
    """The model's module tree on the meta device: no weights read, so an 8B model costs a second.

    It lets the LoRA targets be checked before hours of video checks. `None` when the config cannot
    be read or the architecture cannot be built that way: the targets are then checked on the loaded
    model, and a model that cannot load is reported by `load_policy`, after the data checks as before.
    """
    from videosavi.compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    rev = None if Path(source).is_dir() else revision
    try:
        config = AutoConfig.from_pretrained(source, revision=rev)
        with torch.device("meta"):
            return AutoModelForImageTextToText.from_config(config)
    except Exception:  # unreadable or exotic: see the docstring
        return None


def lora_config(r: int, alpha: int, dropout: float, targets: list[str]) -> Any:
    """PEFT's config with the exact module names `training.lora_targets` found."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                      task_type="CAUSAL_LM")


def save_merged(peft_model: Any, processor: Any, dest: Path) -> Path:
    """Fold the adapter into the base weights and save model + processor as a plain checkpoint.

    Merging happens in place (no second copy of an 8B model in memory), so the PEFT model is
    unusable afterwards: save the adapter first.
    """
    merged = peft_model.merge_and_unload()
    dest.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest

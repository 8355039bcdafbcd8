"""The training options, each defined once with its help text: `savi train`, `savi loop` and the build
config's `training:` section are all derived from `TrainingOptions` (TRL's style: a dataclass whose
fields carry `metadata={"help": ...}`).

Plain data in the core layer, so the config (core) can validate a `training:` section and the CLI can
generate its options without importing torch or the training package. `training.args.TrainArgs`
extends it with what one run reads and writes (dataset, revision, model, output, video roots).

Defaults follow the paper's setting (LoRA r = alpha = 8, DPO beta 0.1, one epoch). The paper does not
state a learning rate; 1e-4 with cosine decay is ms-swift's LoRA default (the framework the paper
trained with), and 8 gradient-accumulation steps at batch 1 keep one video per forward pass, which
is what fits a 32-frame video model on one GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict

DEFAULT_LOSS = "sigmoid"
# RRPO's KL weight. The poster gives no value; the authors' released training scripts use 0.01
# (their loss docstring suggests 0.01 to 0.1), so that is the default here.
RRPO_DEFAULT_ALPHA = 0.01
# Share of a revision's pairs that may lack a usable video before training refuses to start.
DEFAULT_MAX_MISSING_SHARE = 0.05


def _opt(default: Any, help: str, **extra: Any) -> Any:
    """A field with its help text (and CLI hints: `flag` when the option is not `--field-name`,
    `parse` for a value given as text, `metavar`, `commands` when not every training command has it)."""
    return field(default=default, metadata={"help": help, **extra})


def parse_resize(value: str | None) -> tuple[int, int] | None:
    """`HEIGHTxWIDTH` -> (height, width); None stays None (the build's setting)."""
    if value is None:
        return None
    try:
        h, w = (int(x) for x in value.lower().split("x"))
    except ValueError:
        raise ValueError(f"expected HEIGHTxWIDTH, e.g. 448x448, got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"HEIGHTxWIDTH must be positive, got {value!r}")
    return h, w


@dataclass
class TrainingOptions:
    """How to train on one revision: the objective, LoRA, the optimizer, data checks, the device."""

    # Pydantic reads this when the class is a field of the build config (`training:`): unknown keys fail.
    __pydantic_config__ = ConfigDict(extra="forbid")

    epochs: float = _opt(1.0, "Passes over the pairs (paper: 1).")
    max_steps: int | None = _opt(None, "Stop after this many optimizer steps.")
    beta: float = _opt(0.1, "DPO beta (paper: 0.1).")
    loss: str = _opt(
        DEFAULT_LOSS,
        "Preference objective: sigmoid (plain DPO, the paper's), any other loss type of TRL's DPOTrainer "
        "(hinge, ipo, robust, exo_pair, nca_pair, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, "
        "discopop, sft, sigmoid_norm), or rrpo (phrase-level margin on the pairs' differing phrases + token-wise "
        "KL; docs/training.md).")
    rrpo_alpha: float = _opt(
        RRPO_DEFAULT_ALPHA, "RRPO's KL weight (with --loss rrpo; 0.01 is the RRPO authors' setting).", flag="--alpha")
    label_smoothing: float = _opt(0.0, "TRL's label smoothing, read by the robust, exo_pair and aot losses.")
    lora_r: int = _opt(8, "LoRA rank (paper: 8).")
    lora_alpha: int = _opt(8, "LoRA alpha (paper: 8).")
    lora_dropout: float = _opt(0.05, "LoRA dropout.")
    lora_targets: str = _opt(
        "all-linear",
        "all-linear (every linear layer of the language model: the paper's ms-swift setting), attention (its "
        "q/k/v/o only), or a regex matched against whole module names.")
    lr: float = _opt(1e-4, "Peak learning rate.")
    lr_scheduler: str = _opt("cosine", "Learning-rate schedule (a transformers scheduler name: cosine, linear, "
                                       "constant, ...).")
    warmup_ratio: float = _opt(0.05, "Share of steps spent warming up.")
    per_device_batch_size: int = _opt(1, "Pairs per device per forward pass (TRL's per_device_train_batch_size).")
    grad_accum: int = _opt(8, "Gradient accumulation steps.")
    seed: int = _opt(42, "Seed of LoRA init, shuffling and dropout.")
    max_missing_share: float = _opt(
        DEFAULT_MAX_MISSING_SHARE, "Stop before any work if more than this share of pairs lack a usable video.")
    allow_sha_mismatch: bool = _opt(
        False, "Use videos whose sha256 differs from the row's (they are trial-decoded).")
    verify_decode: bool = _opt(False, "Trial-decode every video before training.")
    max_pairs: int | None = _opt(None, "Use only the first N pairs (smoke runs).")
    question_type: Literal["both", "spatial", "temporal"] = _opt(
        "both", "Train on the pairs of one question type only: spatial, temporal, or both (the paper's Table 7).")
    fraction: float = _opt(
        1.0, "Train on this share of the pairs (0 < F <= 1): a subset seeded by --seed and stratified by source and "
             "question type, so the revision's mix is kept (the paper's Figure 2).")
    frames_as: Literal["auto", "video", "images"] = _opt(
        "auto", "Give the processor the frames as a video, or as separate images (auto: as the model expects).")
    resize: tuple[int, int] | None = _opt(
        None, "Frame size HEIGHTxWIDTH; default: the build's setting.", parse=parse_resize, metavar="HxW")
    device: Literal["auto", "cpu", "cuda"] = _opt("auto", "Device to train on.")
    bf16: bool | None = _opt(None, "bfloat16 training; default: on for a GPU that has it.")
    gradient_checkpointing: bool | None = _opt(None, "Recompute activations to save memory; default: on for a "
                                                     "GPU, off for the CPU.")
    dataloader_workers: int = _opt(2, "Data-loader worker processes (they decode the frames).")
    logging_steps: int = _opt(1, "Log metrics every N steps.")
    save_steps: int | None = _opt(None, "Checkpoint every N steps (for --resume).")
    resume: bool = _opt(False, "Continue from the last checkpoint in OUT/checkpoints.")
    overwrite: bool = _opt(False, "Replace a finished run in --out.")
    merge: bool = _opt(True, "Also write the merged model.", commands=("train",),
                       why_not="savi loop builds each next iteration with the merged model, so it always merges")

    def replace(self, **changes: Any) -> TrainingOptions:
        """A copy with `changes` (only this class's fields; a subclass keeps its own)."""
        return dataclasses.replace(self, **changes)


def training_fields() -> tuple[dataclasses.Field, ...]:
    """The options, in the order `--help` lists them."""
    return dataclasses.fields(TrainingOptions)


def field_help(name: str) -> str:
    """One option's help text (for a command that shows one training option on its own)."""
    return next(f.metadata["help"] for f in training_fields() if f.name == name)


def given_options(options: TrainingOptions) -> dict[str, Any]:
    """The fields of `options` (a `TrainArgs` too) as a plain dict, for `TrainArgs(**...)`."""
    return {f.name: getattr(options, f.name) for f in training_fields()}

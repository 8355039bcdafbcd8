"""What a training run is asked to do, and what it produced. Plain data: no torch needed to build one.

Defaults follow the paper's setting (LoRA r = alpha = 8, DPO beta 0.1, one epoch). The paper does not
state a learning rate; 1e-4 with cosine decay is ms-swift's LoRA default (the framework the paper
trained with), and 8 gradient-accumulation steps at batch 1 keep one video per forward pass, which
is what fits a 32-frame video model on one GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from videosavi.training.data import DEFAULT_MAX_MISSING_SHARE, DataCounts
from videosavi.training.losses import DEFAULT_LOSS, RRPO_DEFAULT_ALPHA


@dataclass
class TrainArgs:
    dataset: str
    revision: str
    model: str
    output: Path
    video_roots: dict[str, Path]
    store: Path | None = None
    endpoint: str | None = None
    model_revision: str | None = None
    epochs: float = 1.0
    max_steps: int | None = None
    beta: float = 0.1
    loss: str = DEFAULT_LOSS  # a TRL DPO loss type, or "rrpo" (training/losses.py)
    rrpo_alpha: float = RRPO_DEFAULT_ALPHA  # RRPO's token-wise KL weight (read with loss "rrpo" only)
    label_smoothing: float = 0.0  # TRL's label smoothing (robust, exo_pair, aot losses)
    lora_r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # all-linear (ms-swift's default, the paper's), attention, or a regex
    lr: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    batch_size: int = 1
    grad_accum: int = 8
    seed: int = 42
    max_missing_share: float = DEFAULT_MAX_MISSING_SHARE
    allow_sha_mismatch: bool = False
    verify_decode: bool = False
    max_pairs: int | None = None
    frames_as: Literal["auto", "video", "images"] = "auto"
    resize: tuple[int, int] | None = None  # None: the revision's build setting
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool | None = None  # None: on for a GPU that supports it
    gradient_checkpointing: bool | None = None  # None: on for GPU, off on CPU
    logging_steps: int = 1
    save_steps: int | None = None  # checkpoints under OUTPUT/checkpoints for --resume
    resume: bool = False
    overwrite: bool = False
    dataloader_workers: int = 2
    merge: bool = True
    cache_dir: Path | None = None
    follow_symlinks: tuple[str, ...] = ()  # sources whose links may leave their root (build config's option)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy for train.json (paths as strings)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
        out["video_roots"] = {k: str(v) for k, v in self.video_roots.items()}
        out["resize"] = list(self.resize) if self.resize else None
        return out


@dataclass
class TrainResult:
    output: Path
    adapter_dir: Path
    merged_dir: Path | None
    train_json: Path
    dataset_sha: str
    steps: int
    counts: DataCounts
    final_metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    lora_targets: str = ""  # LoraTargets.summary(): mode, module count, leaf names

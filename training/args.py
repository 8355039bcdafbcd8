"""What a training run is asked to do, and what it produced. Plain data: no torch needed to build one.

The options themselves (objective, LoRA, optimizer, data checks, device) are `TrainingOptions`
(videosavi/training_options.py), each defined once with its help text; `TrainArgs` adds what one run
reads and writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from videosavi.training.data import DataCounts
from videosavi.training_options import TrainingOptions


@dataclass(kw_only=True)
class TrainArgs(TrainingOptions):
    dataset: str
    revision: str
    model: str
    output: Path
    video_roots: dict[str, Path]
    store: Path | None = None
    endpoint: str | None = None
    model_revision: str | None = None
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

"""Records of `savi bench`: one model's benchmark scores, measured with LMMs-Eval.

One JSON file per model (`OUT/<label>.json`, a `BenchResults`) holds one `BenchScore` per task, the
identity of the model that earned them (name and weights revision), and how it was run (the LMMs-Eval
wrapper, frames). The schema is ours and stable across LMMs-Eval versions; LMMs-Eval's own output
(results JSON, per-sample log) lies beside it and each score names its file, so nothing is lost when
LMMs-Eval changes its format.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from videosavi.schemas.text import NonEmptyStr

BENCH_SCHEMA_VERSION = 1
# A label names the results file: `<label>.json` in the output folder.
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_LABEL = re.compile(LABEL_PATTERN)

Scale = Literal["fraction", "percent"]


def is_label(text: str) -> bool:
    return bool(_LABEL.match(text)) and ".." not in text


class BenchScore(BaseModel):
    """The headline metric of one task (or benchmark group) for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: NonEmptyStr = Field(description="the LMMs-Eval task or group name")
    benchmark: str | None = Field(default=None, description="the paper's benchmark it stands for (MVBench, ...)")
    metric: NonEmptyStr = Field(description="the metric's name in LMMs-Eval (accuracy, mvbench_accuracy, ...)")
    filter: str = Field(default="none", description="LMMs-Eval's filter the metric was read after")
    value: float = Field(description="the metric as LMMs-Eval reported it")
    scale: Scale = Field(description="whether `value` is a fraction (0-1) or a percentage (0-100)")
    stderr: float | None = Field(default=None, ge=0, description="LMMs-Eval's standard error, when it gives one")
    n: int = Field(ge=0, description="samples scored")
    task_version: str | None = Field(default=None, description="the task's metadata version in LMMs-Eval")
    task_hash: str | None = Field(default=None, description="LMMs-Eval's hash of the task's documents")
    dataset: str | None = Field(default=None, description="the task's dataset_path (a Hub dataset or a loader)")
    subtasks: list[str] = Field(default_factory=list, description="for a group: the tasks its score averages")
    aggregated_by: Literal["lmms-eval", "videosavi"] = Field(
        default="lmms-eval", description="videosavi: a group LMMs-Eval gives no score for, averaged over its "
        "subtasks' samples here")
    limit: int | None = Field(default=None, ge=1, description="LMMs-Eval's --limit: only the first N samples were "
                              "scored (a smoke run, not comparable with full scores)")
    lmms_eval_version: NonEmptyStr
    evaluated_at: NonEmptyStr = Field(description="UTC time the evaluation finished (ISO 8601)")
    seconds: float = Field(ge=0, description="wall time of the LMMs-Eval run")
    raw_results: str = Field(description="LMMs-Eval's own results JSON, relative to the output folder")
    raw_samples: str | None = Field(default=None, description="its per-sample log, relative to the output folder")

    @property
    def percent(self) -> float:
        """The score in percent, as the paper prints it."""
        return self.value * 100.0 if self.scale == "fraction" else self.value

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a score must be a finite number")
        return value

    @field_validator("raw_results", "raw_samples")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError(f"{value!r} must be a path inside the output folder")
        return value


class BenchModel(BaseModel):
    """Which model the scores belong to, and how LMMs-Eval ran it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name_or_path: NonEmptyStr = Field(description="as given: a folder, a hub id, a tiny-* name or a served name")
    revision: NonEmptyStr = Field(description="local:<weights hash> for a folder, the hub commit, or served:<name>")
    iteration: int | None = Field(default=None, ge=0, description="self-training iteration (0: the base model)")
    wrapper: NonEmptyStr = Field(description="the LMMs-Eval model wrapper (qwen2_vl, internvl_hf, openai, ...)")
    model_type: str | None = Field(default=None, description="the checkpoint's config.json model_type")
    frames: int = Field(gt=0, description="frames per video asked of the wrapper (paper: 32)")
    base_url: str | None = Field(default=None, description="the OpenAI-compatible server, for the openai wrapper")
    card: str | None = Field(default=None, description="the model folder's model card (README.md), when it has one")


class BenchResults(BaseModel):
    """`OUT/<label>.json`: every task one model was evaluated on. Written after each task, atomically."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    label: str = Field(pattern=LABEL_PATTERN, description="the file's name: base, iter1, ..., or the model's")
    model: BenchModel
    scores: dict[str, BenchScore] = Field(default_factory=dict, description="task -> score")
    videosavi_version: NonEmptyStr

    @model_validator(mode="after")
    def _keys(self) -> BenchResults:
        for task, score in self.scores.items():
            if score.task != task:
                raise ValueError(f"score under {task!r} is for task {score.task!r}")
        return self

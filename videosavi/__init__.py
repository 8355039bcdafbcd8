"""videosavi: self-aligned video preference data, built, validated, published and trained on.

The public Python API is `__all__`. The top level stays import-light (no torch, no transformers) so
`savi --help` is instant: each name is imported from its module when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from videosavi.progress import disable_progress_bars, enable_progress_bars
from videosavi.version import __version__

# name -> module that defines it
_PUBLIC = {
    "BuildConfig": "videosavi.config",
    "load_config": "videosavi.config",
    "model_config": "videosavi.config",
    "TrainingOptions": "videosavi.training_options",
    "run_build": "videosavi.builders.run.api",
    "BuildOptions": "videosavi.builders.run.runner",
    "BuildResult": "videosavi.builders.run.runner",
    "Stage": "videosavi.builders.generate.stages",
    "pair_stages": "videosavi.builders.generate.stages",
    "Executor": "videosavi.builders.run.executors.base",
    "get_executor": "videosavi.builders.run.executors.base",
    "register_executor": "videosavi.builders.run.executors.base",
    "load_revision": "videosavi.hub.load",
    "TrainArgs": "videosavi.training.args",
    "train_dpo": "videosavi.training.train",
}

if TYPE_CHECKING:  # pragma: no cover
    from videosavi.builders.generate.stages import Stage as Stage
    from videosavi.builders.generate.stages import pair_stages as pair_stages
    from videosavi.builders.run.api import run_build as run_build
    from videosavi.builders.run.executors.base import Executor as Executor
    from videosavi.builders.run.executors.base import get_executor as get_executor
    from videosavi.builders.run.executors.base import register_executor as register_executor
    from videosavi.builders.run.runner import BuildOptions as BuildOptions
    from videosavi.builders.run.runner import BuildResult as BuildResult
    from videosavi.config import BuildConfig as BuildConfig
    from videosavi.config import load_config as load_config
    from videosavi.config import model_config as model_config
    from videosavi.hub.load import load_revision as load_revision
    from videosavi.training.args import TrainArgs as TrainArgs
    from videosavi.training.train import train_dpo as train_dpo
    from videosavi.training_options import TrainingOptions as TrainingOptions


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'videosavi' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["__version__", "disable_progress_bars", "enable_progress_bars", *sorted(_PUBLIC)]

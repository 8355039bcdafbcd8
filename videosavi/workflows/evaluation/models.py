"""The model behind `savi eval answer` and `savi eval judge`, named on the command line.

The same rule as `savi-build --model`: a `tiny-*` name is an in-code test model, a base URL means an
OpenAI-compatible server (GPT-4o, or vLLM/SGLang serving an open model), anything else a hub id or a
local folder run in-process by transformers.
"""

from __future__ import annotations

from pathlib import Path

from videosavi.builders.generate.models.base import ModelBackend
from videosavi.builders.generate.models.loader import load_backend
from videosavi.config import AnyModelConfig, model_config
from videosavi.errors import ConfigError


def eval_model_config(name: str, *, backend: str | None = None, base_url: str | None = None,
                      batch_size: int = 8, api_key_env: str = "OPENAI_API_KEY",
                      constrained: bool = True) -> AnyModelConfig:
    """The model config for `name`; `backend` overrides the guess."""
    if backend is None:
        if base_url:
            backend = "openai"
        elif name.startswith("tiny-") and not Path(name).exists():
            backend = "tiny"
        else:
            backend = "transformers"
    if backend == "openai" and not base_url:
        raise ConfigError("the openai backend needs --base-url (e.g. https://api.openai.com/v1 for GPT-4o, "
                          "or http://127.0.0.1:8000/v1 for a vLLM server)")
    if backend not in ("tiny", "transformers", "openai"):
        raise ConfigError(f"--backend must be tiny, transformers or openai, got {backend!r}")
    if backend == "openai":
        return model_config(backend=backend, name_or_path=name, base_url=base_url, batch_size=batch_size,
                            api_key_env=api_key_env, constrained=constrained)
    return model_config(backend=backend, name_or_path=name, batch_size=batch_size, constrained=constrained)


def load_quietly(cfg: AnyModelConfig) -> ModelBackend:
    """The backend, without transformers' weight-loading bars (they would interleave with `--json`)."""
    if cfg.backend in ("tiny", "transformers"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    return load_backend(cfg)

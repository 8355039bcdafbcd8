"""`load_backend`: the backend a `ModelConfig` names, ready to generate.

Apart from the interface (`base.py`), which every backend imports: a factory beside the interface it
returns would make `base` and the backends import each other.
"""

from __future__ import annotations

from videosavi.builders.generate.models.base import ModelBackend
from videosavi.config import AnyModelConfig as ModelConfig
from videosavi.errors import ModelError


def load_backend(cfg: ModelConfig) -> ModelBackend:
    """The backend `cfg.backend` names, ready to generate."""
    if cfg.backend == "tiny":
        from videosavi.builders.generate.models.tiny import ensure_tiny_model
        from videosavi.builders.generate.models.transformers_backend import TransformersBackend

        path = ensure_tiny_model(cfg.name_or_path)
        # One intra-op thread: a tiny model's ops are too small to split (see `cpu_thread_limit`).
        return TransformersBackend(path, cfg, backend_name="tiny", display_name=cfg.name_or_path, cpu_threads=1)
    if cfg.backend == "transformers":
        from videosavi.builders.generate.models.hub_model import require_model_source
        from videosavi.builders.generate.models.transformers_backend import TransformersBackend

        require_model_source(cfg.name_or_path, cfg.revision)  # seconds, not minutes of retries, when offline
        return TransformersBackend(cfg.name_or_path, cfg)
    if cfg.backend == "openai":
        from videosavi.builders.generate.models.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg)
    raise ModelError(f"unknown model backend {cfg.backend!r}")

"""Model backends behind one interface: a batch of requests (frames, chat messages, sampling params,
optional JSON Schema) in, one text per request out. Heavy libraries load only when a backend does."""

from __future__ import annotations

from videosavi.builders.generate.models.base import GenerationRequest, GenerationResult, ModelBackend
from videosavi.builders.generate.models.loader import load_backend

__all__ = ["GenerationRequest", "GenerationResult", "ModelBackend", "load_backend"]

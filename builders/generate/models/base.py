"""The one interface every model backend offers: a batch of requests in, one result per request out.

Stages build `GenerationRequest`s and never learn which backend runs them. The contract that makes
resuming a crashed build safe: a request's text depends only on the request (its seed included),
never on which other requests share its batch or how large the batch is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from videosavi.schemas import ModelInfo

FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """One model call. `frames` go where the user message's `{"type": "video"}` block stands.

    `video_key` names the frames' content (the pipeline derives it from the video file's sha256 and
    the frame indices): calls that share it share one encoded video, so a backend encodes the video
    once and reuses its prompt prefix. It is a promise: two requests with the same key must carry the
    same frames. Without it, backends identify the video by hashing the frames.
    """

    frames: np.ndarray | None
    messages: list[dict[str, Any]]
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    json_schema: dict[str, Any] | None = None
    seed: int = 0
    video_key: str | None = None

    def __post_init__(self) -> None:
        if self.frames is not None:
            f = self.frames
            if not isinstance(f, np.ndarray) or f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
                desc = f"{getattr(f, 'shape', None)} {getattr(f, 'dtype', type(f).__name__)}"
                raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, got {desc}")
            if f.shape[0] < 1:
                raise ValueError("frames must hold at least one frame")
        n_video = count_video_blocks(self.messages)
        if self.frames is not None and n_video != 1:
            raise ValueError(f"a request with frames needs exactly one video block, found {n_video}")
        if self.frames is None and n_video:
            raise ValueError("the messages hold a video block but the request has no frames")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"


def video_identity(request: GenerationRequest) -> str | None:
    """The identity of a request's video: its `video_key` or a hash of the frames, plus their shape.

    The shape is part of it so that one key reused with another resize or frame count can never
    match a different encoding. None for a text-only request.
    """
    frames = request.frames
    if frames is None:
        return None
    shape = "x".join(str(n) for n in frames.shape)
    if request.video_key is not None:
        return f"{request.video_key}:{shape}"
    digest = hashlib.blake2b(np.ascontiguousarray(frames).data, digest_size=16).hexdigest()
    return f"frames-{digest}:{shape}"


def error_result(message: str) -> GenerationResult:
    return GenerationResult(text="", finish_reason="error", error=message)


def count_video_blocks(messages: list[dict[str, Any]]) -> int:
    n = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            n += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "video")
    return n


@runtime_checkable
class ModelBackend(Protocol):
    info: ModelInfo

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order. Per-request failures come back as `finish_reason="error"`."""
        ...

    def close(self) -> None:
        """Release memory, threads and connections; the backend is unusable afterwards."""
        ...

"""Client for OpenAI-compatible chat servers (vLLM, LMDeploy, SGLang, `transformers serve`).

Frames travel as JPEG data URLs (one `image_url` part per frame, which every VLM server accepts) or,
with `video_transport: video_url`, as one MP4 data URL for servers that take video. JSON stages send
their schema as `response_format` so servers with guided decoding constrain the reply. Network
trouble is expected at scale, so transient failures (timeouts, connection errors, 429, 5xx, a body
that is not JSON) are retried with exponential backoff, while a 4xx means the request itself is wrong
and is not retried. Every failure ends as an error result, never an exception, so one bad call
does not sink a batch that holds hundreds of good ones.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from videosavi.builders.models.base import GenerationRequest, GenerationResult, error_result
from videosavi.builders.models.media import jpeg_data_url, mp4_data_url
from videosavi.errors import ModelError
from videosavi.schemas import ModelInfo

if TYPE_CHECKING:
    from videosavi.config import ModelConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
_BODY_EXCERPT = 300


class RetryableError(Exception):
    """A failure worth another try (the server or the network, not the request)."""


class OpenAIBackend:
    """Thread-pooled client for `{base_url}/chat/completions`; see the module docstring."""

    def __init__(self, cfg: ModelConfig, *, backoff_s: float = 0.5) -> None:
        if not cfg.base_url:
            raise ModelError("the openai backend needs model.base_url, e.g. http://127.0.0.1:8000/v1")
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.backoff_s = backoff_s
        self._api_key = os.environ.get(cfg.api_key_env) or None
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=cfg.concurrency, thread_name_prefix="videosavi-openai"
        )
        self.info = ModelInfo(
            backend="openai",
            name_or_path=cfg.name_or_path,
            revision=cfg.revision or "unpinned",
            architecture=None,
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(url={self.url!r}, model={self.cfg.name_or_path!r})"

    # -- public API ------------------------------------------------------------------------------

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        if self._pool is None:
            raise ModelError("backend is closed")
        media = _MediaCache(self.cfg.video_transport)
        futures = [self._pool.submit(self._call, r, media) for r in requests]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- internals -------------------------------------------------------------------------------

    def payload(self, request: GenerationRequest, media: _MediaCache | None = None) -> dict[str, Any]:
        """The JSON body for one request (public so tests and users can inspect what is sent)."""
        media = media or _MediaCache(self.cfg.video_transport)
        body: dict[str, Any] = {
            "model": self.cfg.name_or_path,
            "messages": [_convert_message(m, request.frames, media) for m in request.messages],
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
        }
        if request.json_schema is not None and self.cfg.constrained:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "videosavi_output", "schema": request.json_schema, "strict": True},
            }
        return body

    def _session(self) -> Any:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self._api_key:
                session.headers["Authorization"] = f"Bearer {self._api_key}"
            self._local.session = session
        return session

    def _call(self, request: GenerationRequest, media: _MediaCache) -> GenerationResult:
        try:
            body = self.payload(request, media)
        except Exception as exc:  # bad frames for the encoder: this request only
            return error_result(f"cannot encode request: {type(exc).__name__}: {exc}")
        last = "no attempt made"
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last))
            try:
                return self._post_once(body)
            except RetryableError as exc:
                last = str(exc)
                log.info("attempt %d/%d failed: %s", attempt + 1, self.cfg.max_retries + 1, last)
            except _FatalError as exc:
                return error_result(str(exc))
        return error_result(f"gave up after {self.cfg.max_retries + 1} attempts: {last}")

    def _delay(self, attempt: int, _last: str) -> float:
        base = min(MAX_BACKOFF_S, self.backoff_s * (2 ** (attempt - 1)))
        return base + random.uniform(0, base * 0.1)

    def _post_once(self, body: dict[str, Any]) -> GenerationResult:
        import requests

        try:
            resp = self._session().post(self.url, json=body, timeout=self.cfg.request_timeout_s)
        except requests.Timeout as exc:
            raise RetryableError(f"timed out after {self.cfg.request_timeout_s:g}s") from exc
        except requests.ConnectionError as exc:
            raise RetryableError(f"connection error: {_first_line(exc)}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RetryableError(f"HTTP {resp.status_code}: {resp.text[:_BODY_EXCERPT]}")
        if resp.status_code >= 400:
            raise _FatalError(f"HTTP {resp.status_code} (not retried): {resp.text[:_BODY_EXCERPT]}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise RetryableError(f"response is not JSON: {resp.text[:_BODY_EXCERPT]!r}") from exc
        return _parse_completion(data)


class _FatalError(Exception):
    """A failure another try cannot fix (the server rejected the request)."""


def _parse_completion(data: Any) -> GenerationResult:
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
        reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RetryableError(f"unexpected response shape: {str(data)[:_BODY_EXCERPT]}") from exc
    if not isinstance(content, str):
        raise _FatalError(f"message content is not text: {str(content)[:_BODY_EXCERPT]}")
    if reason == "length":
        return GenerationResult(text=content, finish_reason="length")
    if reason in (None, "stop", "eos", "eos_token", "end_turn"):
        return GenerationResult(text=content, finish_reason="stop")
    return GenerationResult(text=content, finish_reason="error", error=f"server finish_reason {reason!r}")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:_BODY_EXCERPT] if str(exc) else type(exc).__name__


class _MediaCache:
    """Encodes each frames array once per `generate` call: the calls of one video share its frames."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self._parts: dict[int, tuple[np.ndarray, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def parts(self, frames: np.ndarray) -> list[dict[str, Any]]:
        key = id(frames)
        with self._lock:
            hit = self._parts.get(key)
            if hit is not None and hit[0] is frames:
                return hit[1]
        if self.transport == "video_url":
            parts = [{"type": "video_url", "video_url": {"url": mp4_data_url(frames)}}]
        else:
            parts = [{"type": "image_url", "image_url": {"url": jpeg_data_url(f)}} for f in frames]
        with self._lock:
            self._parts[key] = (frames, parts)  # keeping the array keeps its id from being reused
        return parts


def _convert_message(message: dict[str, Any], frames: np.ndarray | None, media: _MediaCache) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return dict(message)
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "video":
            if frames is not None:
                parts.extend(media.parts(frames))
        else:
            parts.append(part)
    return {**message, "content": parts}

"""Client for OpenAI-compatible chat servers (vLLM, LMDeploy, SGLang, `transformers serve`).

Frames travel as JPEG data URLs (one `image_url` part per frame, which every VLM server accepts) or,
with `video_transport: video_url`, as one MP4 data URL for servers that take video. JSON stages send
their schema as `response_format` so servers with guided decoding constrain the reply. Network
trouble is expected at scale, so transient failures (timeouts, connection errors, 429, 5xx, a body
that is not JSON) are retried with exponential backoff, while a 4xx means the request itself is wrong
and is not retried. Every failure ends as an error result, never an exception, so one bad call
does not sink a batch that holds hundreds of good ones.

Cache-friendly by construction: a video's frames are encoded once for all of its calls (a small LRU
keyed by the request's video identity, kept across batches and stages), so every call about a video
carries byte-identical media, and a batch's calls are sent grouped by video, so a server with prefix
caching (vLLM's `--enable-prefix-caching`) finds the video's prefix it has just computed.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from videosavi.builders.models.base import GenerationRequest, GenerationResult, error_result, video_identity
from videosavi.builders.models.media import jpeg_data_url, mp4_data_url
from videosavi.builders.models.stats import BackendStats
from videosavi.errors import ModelError
from videosavi.schemas import ModelInfo

if TYPE_CHECKING:
    from videosavi.config import OpenAIModelConfig as ModelConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
_BODY_EXCERPT = 300
MIN_MEDIA_CACHE_VIDEOS = 8


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
        self.stats = BackendStats()
        # The build's window holds `batch_size` videos whose calls span four stages; twice that
        # keeps the current window's media while the next one starts.
        self.media = MediaCache(cfg.video_transport, max(MIN_MEDIA_CACHE_VIDEOS, 2 * cfg.batch_size), self.stats)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(url={self.url!r}, model={self.cfg.name_or_path!r})"

    # -- public API ------------------------------------------------------------------------------

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Results in request order; sent grouped by video, each video's media encoded once first."""
        if self._pool is None:
            raise ModelError("backend is closed")
        vids = [video_identity(r) for r in requests]
        encodes_before = self.stats.media_encodes
        first: dict[str, int] = {}
        for i, vid in enumerate(vids):
            if vid is not None:
                first.setdefault(vid, i)
        # Encode the videos not yet cached in parallel, before any call needs them.
        encodes = [self._pool.submit(self.media.ensure, vid, frames)
                   for vid, i in first.items() if (frames := requests[i].frames) is not None]
        for f in encodes:
            f.exception()  # a video that cannot be encoded fails its own calls below, nothing else
        order = sorted(range(len(requests)), key=lambda i: (first[v] if (v := vids[i]) else i, i))
        futures = {i: self._pool.submit(self._call, requests[i], vids[i]) for i in order}
        results = [futures[i].result() for i in range(len(requests))]
        n_video = sum(1 for v in vids if v is not None)
        self.stats.requests += len(requests)
        self.stats.video_requests += n_video
        self.stats.media_hits += max(0, n_video - (self.stats.media_encodes - encodes_before))
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.media.clear()

    # -- internals -------------------------------------------------------------------------------

    def payload(self, request: GenerationRequest, video_id: str | None = None) -> dict[str, Any]:
        """The JSON body for one request (public so tests and users can inspect what is sent)."""
        if request.frames is not None and video_id is None:
            video_id = video_identity(request)
        parts = self.media.ensure(video_id, request.frames) if request.frames is not None and video_id else None
        body: dict[str, Any] = {
            "model": self.cfg.name_or_path,
            "messages": [_convert_message(m, parts) for m in request.messages],
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

    def _call(self, request: GenerationRequest, video_id: str | None) -> GenerationResult:
        try:
            body = self.payload(request, video_id)
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


class MediaCache:
    """Encoded frames by video identity, least recently used dropped beyond `max_videos`.

    The same parts object is returned for every call of a video, so their payloads carry byte-identical
    media (what a server's prefix and multimodal caches key on) and the JPEG/MP4 encoding runs once
    per video instead of once per call or per batch.
    """

    def __init__(self, transport: str, max_videos: int, stats: BackendStats) -> None:
        self.transport = transport
        self.max_videos = max(1, max_videos)
        self.stats = stats
        self._parts: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def ensure(self, video_id: str, frames: np.ndarray) -> list[dict[str, Any]]:
        with self._lock:
            hit = self._parts.get(video_id)
            if hit is not None:
                self._parts.move_to_end(video_id)
                return hit
        parts = self._encode(frames)
        with self._lock:
            if video_id in self._parts:  # another thread encoded it meanwhile: keep the first copy
                return self._parts[video_id]
            self.stats.media_encodes += 1
            self._parts[video_id] = parts
            while len(self._parts) > self.max_videos:
                self._parts.popitem(last=False)
        return parts

    def _encode(self, frames: np.ndarray) -> list[dict[str, Any]]:
        if self.transport == "video_url":
            return [{"type": "video_url", "video_url": {"url": mp4_data_url(frames)}}]
        return [{"type": "image_url", "image_url": {"url": jpeg_data_url(f)}} for f in frames]

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()

    def __len__(self) -> int:
        return len(self._parts)


def _convert_message(message: dict[str, Any], media: list[dict[str, Any]] | None) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return dict(message)
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "video":
            if media is not None:
                parts.extend(media)
        else:
            parts.append(part)
    return {**message, "content": parts}

"""Client for OpenAI-compatible chat servers (vLLM, SGLang, LMDeploy, the OpenAI API, `transformers serve`).

Frames travel as JPEG data URLs (one `image_url` part per frame, which every VLM server accepts) or,
with `video_transport: video_url`, as one MP4 data URL for servers that take video. JSON stages send
their schema with the options the server understands (builders/generate/models/openai_server.py), so vLLM and
SGLang give the same compact JSON as in-process decoding.

HTTP is httpx's async client on one event loop in a background thread, with tenacity for the retries:
- **A total deadline per request.** `model.request_timeout_s` bounds one HTTP request from connecting to
  the last byte of the reply (`asyncio.wait_for` around the whole exchange), not each read: a server
  that trickles its headers or body a byte at a time is cut off at the deadline like a silent one.
- **Ctrl-C stops a build within a second,** whatever the server does: the calling thread waits on the
  loop in short slices, so SIGINT reaches it; the in-flight requests are cancelled and their
  connections closed, and nothing waits for them at exit. What finished is in the build's cache.
- **Transient failures are retried** with exponential backoff and jitter (timeouts, connection errors,
  429, 5xx, a body that is not JSON), a 4xx is not (the request itself is wrong). Every failure ends as an
  error result naming the server, never an exception, so one bad call does not sink a batch.

Cache-friendly by construction: a video's frames are encoded once for all of its calls (a small LRU
keyed by the request's video identity, kept across batches and stages), so every call about a video
carries byte-identical media, and a batch's calls are sent grouped by video, so a server with prefix
caching (vLLM's `--enable-prefix-caching`) finds the video's prefix it has just computed. The server's
own count of reused prompt tokens (`usage.prompt_tokens_details.cached_tokens`, which vLLM reports with
`--enable-prompt-tokens-details`) is added up in `stats`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from videosavi.builders.generate.models.base import GenerationRequest, GenerationResult, error_result, video_identity
from videosavi.builders.generate.models.media import jpeg_data_url, mp4_data_url
from videosavi.builders.generate.models.openai_server import (
    ServerInfo,
    probe_server,
    seed_is_sent,
    structured_output_fields,
)
from videosavi.builders.generate.models.stats import BackendStats
from videosavi.errors import ModelError
from videosavi.schemas import ModelInfo

if TYPE_CHECKING:
    from videosavi.config import OpenAIModelConfig as ModelConfig

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
_BODY_EXCERPT = 300
MIN_MEDIA_CACHE_VIDEOS = 8
_WAIT_SLICE_S = 0.2  # how often the calling thread wakes up, so Ctrl-C is seen at once
_CLOSE_GRACE_S = 2.0
T = TypeVar("T")


class RetryableError(Exception):
    """A failure worth another try (the server or the network, not the request); `retry_after`: the seconds
    the server asked to wait (a 429's or 503's Retry-After header)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _FatalError(Exception):
    """A failure another try cannot fix (the server rejected the request)."""


class _LoopThread:
    """An asyncio event loop running in a daemon thread; `run` waits for a coroutine interruptibly."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="videosavi-openai", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            while True:
                try:
                    return future.result(timeout=_WAIT_SLICE_S)
                except concurrent.futures.TimeoutError:
                    continue
        except BaseException:  # Ctrl-C (or anything else) in the caller: cancel the requests in flight
            future.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=_CLOSE_GRACE_S) if tasks else None

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=_CLOSE_GRACE_S + 1)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=_CLOSE_GRACE_S)
        if not self._thread.is_alive():
            self.loop.close()


class OpenAIBackend:
    """Async client for `{base_url}/chat/completions`; see the module docstring.

    Construction asks the server what it is (`probe`; see openai_server.py) and fails with one line when
    it cannot be used: down, a base_url that is not the API root, another model served.
    """

    def __init__(self, cfg: ModelConfig, *, backoff_s: float = 0.5, probe: bool = True) -> None:
        if not cfg.base_url:
            raise ModelError("the openai backend needs model.base_url, e.g. http://127.0.0.1:8000/v1")
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.backoff_s = backoff_s
        api_key = os.environ.get(cfg.api_key_env) or None
        self._loop = _LoopThread()
        self._encoder: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=min(cfg.concurrency, 4), thread_name_prefix="videosavi-media")
        self._client = self._loop.run(self._make_client(api_key))
        self._seen_videos: OrderedDict[str, None] = OrderedDict()
        self.stats = BackendStats()
        # The build's window holds `batch_size` videos whose calls span four stages; twice that
        # keeps the current window's media while the next one starts.
        self.media = MediaCache(cfg.video_transport, max(MIN_MEDIA_CACHE_VIDEOS, 2 * cfg.batch_size), self.stats)
        try:
            self.server = (self._loop.run(probe_server(
                self._client, self.base_url, cfg.name_or_path, cfg.server, cfg.api_key_env, cfg.request_timeout_s))
                if probe else ServerInfo(kind="openai" if cfg.server == "auto" else cfg.server))
        except BaseException:
            self.close()
            raise
        self.send_seed = seed_is_sent(self.server.kind, cfg.send_seed)
        self.info = ModelInfo(
            backend="openai",
            name_or_path=cfg.name_or_path,
            revision=cfg.revision or "unpinned",
            architecture=None,
        )
        log.info("model server at %s: %s", self.base_url, self.server.describe())

    async def _make_client(self, api_key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # httpx's own timeout bounds connecting and each read; the total deadline is `wait_for` in `_post_once`.
        return httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(self.cfg.request_timeout_s),
            limits=httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency),
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(url={self.url!r}, model={self.cfg.name_or_path!r})"

    # -- public API ------------------------------------------------------------------------------

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Results in request order; sent grouped by video, each video's media encoded once first."""
        if self._encoder is None:
            raise ModelError("backend is closed")
        vids = [video_identity(r) for r in requests]
        encodes_before = self.stats.media_encodes
        first: dict[str, int] = {}
        for i, vid in enumerate(vids):
            if vid is not None:
                first.setdefault(vid, i)
        # Encode the videos not yet cached in parallel, before any call needs them.
        encodes = [self._encoder.submit(self.media.ensure, vid, frames)
                   for vid, i in first.items() if (frames := requests[i].frames) is not None]
        for f in encodes:
            f.exception()  # a video that cannot be encoded fails its own calls below, nothing else
        bodies: list[dict[str, Any] | GenerationResult] = []
        for r, vid in zip(requests, vids, strict=True):
            try:
                bodies.append(self.payload(r, vid))
            except Exception as exc:  # bad frames for the encoder: this request only
                bodies.append(error_result(f"cannot encode request: {type(exc).__name__}: {exc}"))
        order = sorted(range(len(requests)), key=lambda i: (first[v] if (v := vids[i]) else i, i))
        repeat = [v is not None and v in self._seen_videos for v in vids]
        for v in vids:
            if v is not None:
                self._seen_videos[v] = None
                self._seen_videos.move_to_end(v)
        while len(self._seen_videos) > 4 * self.media.max_videos:
            self._seen_videos.popitem(last=False)
        results = self._loop.run(self._send_all(bodies, order))
        n_video = sum(1 for v in vids if v is not None)
        self.stats.requests += len(requests)
        self.stats.video_requests += n_video
        self.stats.media_hits += max(0, n_video - (self.stats.media_encodes - encodes_before))
        for again, (_, usage) in zip(repeat, results, strict=True):
            if again and usage is not None:
                self.stats.repeat_video_calls += 1
                self.stats.repeat_video_calls_cached += int(usage.get("cached_tokens", 0) > 0)
        return [r for r, _ in results]

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.shutdown(wait=False, cancel_futures=True)
            self._encoder = None
        client = getattr(self, "_client", None)
        if client is not None and not self._loop.loop.is_closed():
            with contextlib.suppress(asyncio.TimeoutError, RuntimeError, httpx.HTTPError):
                self._loop.run(asyncio.wait_for(client.aclose(), _CLOSE_GRACE_S))
        self._loop.close()
        self.media.clear()

    def send_plain_schema(self, request: GenerationRequest) -> str | None:
        """The reply to `request` sent with a bare JSON Schema (`response_format`), whatever the server kind:
        what a client without our grammar gets (`savi doctor` shows it). None when the call fails."""
        body = self.payload(request)
        for key in ("structured_outputs", "response_format"):
            body.pop(key, None)
        if request.json_schema is not None:
            body.update(structured_output_fields("openai", request.json_schema))
        result, _ = self._loop.run(self._call(body))
        return result.text if result.ok else None

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
        }
        if self.send_seed:
            body["seed"] = request.seed
        if request.json_schema is not None and self.cfg.constrained:
            body.update(structured_output_fields(self.server.kind, request.json_schema))
        return body

    # -- internals -------------------------------------------------------------------------------

    async def _send_all(self, bodies: list[dict[str, Any] | GenerationResult],
                        order: list[int]) -> list[tuple[GenerationResult, dict[str, int] | None]]:
        """Every request, at most `concurrency` at a time, started in `order` (grouped by video)."""
        limit = asyncio.Semaphore(self.cfg.concurrency)
        out: list[tuple[GenerationResult, dict[str, int] | None]] = [(error_result("not sent"), None)] * len(bodies)

        async def one(i: int) -> None:
            body = bodies[i]
            if isinstance(body, GenerationResult):
                out[i] = (body, None)
                return
            async with limit:
                out[i] = await self._call(body)

        tasks = [asyncio.create_task(one(i)) for i in order]  # created in order: the semaphore is FIFO
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        return out

    async def _call(self, body: dict[str, Any]) -> tuple[GenerationResult, dict[str, int] | None]:
        attempts = self.cfg.max_retries + 1
        backoff = wait_exponential_jitter(initial=self.backoff_s, max=MAX_BACKOFF_S, jitter=self.backoff_s * 0.1)

        def wait(state: RetryCallState) -> float:  # exponential, or longer where the server asks for it
            exc = state.outcome.exception() if state.outcome is not None else None
            asked = getattr(exc, "retry_after", None)
            return min(MAX_BACKOFF_S, max(backoff(state), asked)) if asked else backoff(state)

        retrying = AsyncRetrying(stop=stop_after_attempt(attempts), wait=wait,
                                 retry=retry_if_exception_type(RetryableError), reraise=True, before_sleep=_log_retry)
        try:
            async for attempt in retrying:
                with attempt:
                    result = await self._post_once(body)
        except RetryableError as exc:
            return error_result(f"gave up after {attempts} attempt{'s' * (attempts > 1)}: {exc}"), None
        except _FatalError as exc:
            return error_result(str(exc)), None
        return result

    async def _post_once(self, body: dict[str, Any]) -> tuple[GenerationResult, dict[str, int] | None]:
        deadline = self.cfg.request_timeout_s
        try:
            resp = await asyncio.wait_for(self._client.post(self.url, json=body), deadline)
        except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
            raise RetryableError(f"timed out: no complete reply from {self.url} within {deadline:g} s "
                                 "(model.request_timeout_s)") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"connection error to {self.url}: {_first_line(exc)}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RetryableError(f"HTTP {resp.status_code} from {self.url}: {_excerpt(resp.text)}",
                                 retry_after=_retry_after(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            raise _FatalError(f"HTTP {resp.status_code} from {self.url} (not retried): {_excerpt(resp.text)}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise RetryableError(f"reply from {self.url} is not JSON: {resp.text[:_BODY_EXCERPT]!r}") from exc
        result = _parse_completion(data, self.url)
        usage = _usage(data)
        if usage is not None:
            log.debug("usage: %d prompt tokens, %d cached, %d generated (%s)", usage["prompt_tokens"],
                      usage["cached_tokens"], usage["completion_tokens"], _text_head(body))
            self.stats.server_prompt_tokens += usage["prompt_tokens"]
            self.stats.server_cached_tokens += usage["cached_tokens"]
            self.stats.server_completion_tokens += usage["completion_tokens"]
        return result, usage


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.info("attempt %d failed: %s", state.attempt_number, exc)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delay form; an HTTP date is left to the backoff)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:_BODY_EXCERPT]


def _parse_completion(data: Any, url: str) -> GenerationResult:
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
        reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise RetryableError(f"unexpected reply shape from {url}: {str(data)[:_BODY_EXCERPT]}") from exc
    if not isinstance(content, str):
        raise _FatalError(f"message content from {url} is not text: {str(content)[:_BODY_EXCERPT]}")
    if reason == "length":
        return GenerationResult(text=content, finish_reason="length")
    if reason in (None, "stop", "eos", "eos_token", "end_turn"):
        return GenerationResult(text=content, finish_reason="stop")
    return GenerationResult(text=content, finish_reason="error", error=f"{url}: server finish_reason {reason!r}")


def _usage(data: Any) -> dict[str, int] | None:
    """Prompt, cached-prompt and completion tokens of one reply, where the server reports them."""
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or {}
    try:
        return {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                "cached_tokens": int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0),
                "completion_tokens": int(usage.get("completion_tokens") or 0)}
    except (TypeError, ValueError):
        return None


def _text_head(body: dict[str, Any]) -> str:
    """The start of a request's text part, to tell calls apart in debug logs."""
    for message in body.get("messages", []):
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "text":
                return str(part.get("text", ""))[:40]
    return ""


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

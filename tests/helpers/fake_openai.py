"""OpenAI-compatible test servers on 127.0.0.1: a recorder with scripted failures, and a stand-in model.

A real vLLM serves the tiny model in `make test-vllm` (tests/builders/generate/models/test_vllm_engine.py), and a real
`transformers serve` in test_openai_backend.py; neither can be told to fail. These small `http.server`
handlers play the failures a client must survive (5xx, timeouts, non-JSON bodies, 4xx, replies trickled a
byte at a time, concurrency limits), answer `/v1/models` like the server kind they play, and record what
the client sent. `model_reply` answers like a model that always follows the JSON Schema, as a function of
the request alone, so two runs against it must produce the same data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Trickle:
    """A reply sent one byte every `per_byte_s` seconds: the body only, or the status line and headers too."""

    data: bytes
    per_byte_s: float = 1.0
    headers_too: bool = False


@dataclass(frozen=True)
class CutOff:
    """A reply whose headers promise the whole of `data` and whose connection closes after `keep` bytes of it."""

    data: bytes
    keep: int


@dataclass(frozen=True)
class WithHeaders:
    """A reply with headers of its own (e.g. Retry-After)."""

    data: str
    headers: dict[str, str]


# behaviour(n, body, headers) -> (HTTP status, payload, seconds to wait before answering)
Behaviour = Callable[[int, dict, dict], tuple[int, "str | bytes | Trickle | CutOff | WithHeaders", float]]


class FakeServer:
    """A threaded HTTP server whose reply to the n-th POST to /v1/chat/completions is `behaviour(n, body,
    headers)`. GET /v1/models lists `models` (owned by `owned_by`: "vllm" and "sglang" make it look like
    those servers); `version` answers GET /version. Any other path is a 404, as on a real server."""

    def __init__(self, behaviour: Behaviour, *, models: list[str] | None = None, owned_by: str = "fake",
                 version: str | None = None) -> None:
        self.behaviour = behaviour
        self.models = models
        self.owned_by = owned_by
        self.version = version
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.gets: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: one request per connection, so `close` ends them all
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.gets.append(self.path)
                if self.path == "/v1/models":
                    names = server.models or []
                    self._send(200, json.dumps({"object": "list", "data": [
                        {"id": n, "object": "model", "owned_by": server.owned_by} for n in names]}).encode())
                elif self.path == "/version" and server.version is not None:
                    self._send(200, json.dumps({"version": server.version}).encode())
                else:
                    self._send(404, b'{"detail": "Not Found"}')

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"detail": "Not Found"}')
                    return
                with server._lock:
                    n = len(server.bodies)
                    server.bodies.append(json.loads(raw))
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, payload, delay = server.behaviour(n, server.bodies[n], server.headers[n])
                    time.sleep(delay)
                    if isinstance(payload, Trickle):
                        self._trickle(status, payload)
                    elif isinstance(payload, WithHeaders):
                        self._send(status, payload.data.encode(), payload.headers)
                    elif isinstance(payload, CutOff):
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload.data)))
                        self.end_headers()
                        self.wfile.write(payload.data[:payload.keep])
                    else:
                        self._send(status, payload.encode() if isinstance(payload, str) else payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _trickle(self, status: int, t: Trickle) -> None:
                head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(t.data)}\r\n\r\n").encode()
                if not t.headers_too:
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b""
                for i in range(len(head) + len(t.data)):
                    chunk = (head + t.data)[i:i + 1]
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(t.per_byte_s)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, finish: str = "stop", usage: dict | None = None) -> str:
    reply: dict[str, Any] = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]}
    if usage is not None:
        reply["usage"] = usage
    return json.dumps(reply)


ERROR_TYPES = ("factual_inaccuracy", "temporal_ordering", "spatial_relationship", "object_hallucination",
               "causal_reasoning", "detail_omission")


def request_schema(body: dict) -> dict:
    """The JSON Schema a request constrains its reply to, in whichever field the client put it
    (`response_format`, or vLLM's `structured_outputs`); {} for free text."""
    so = body.get("structured_outputs") or {}
    if so.get("json") is not None:
        return so["json"]
    if so.get("grammar"):  # vLLM's per-request grammar: the EBNF of one of the stages' schemas
        return _schemas_by_grammar().get(so["grammar"], {})
    return (body.get("response_format") or {}).get("json_schema", {}).get("schema") or {}


@functools.lru_cache(maxsize=1)
def _schemas_by_grammar() -> dict[str, dict]:
    """EBNF text -> schema, for the schemas the stages send (questions of up to 6 + 6, the critique)."""
    from videosavi.builders.generate.models.grammar import json_schema_ebnf
    from videosavi.builders.generate.stages.critique import critique_schema
    from videosavi.builders.generate.stages.questions import question_schema

    schemas = [critique_schema()] + [question_schema(s, t) for s in range(7) for t in range(7) if s + t]
    return {json_schema_ebnf(schema): schema for schema in schemas}


def request_digest(body: dict) -> str:
    """A stable fingerprint of one request (messages with their frames, seed, schema, sampling)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def model_reply(body: dict) -> str:
    """What a schema-following model would answer, derived from the request only.

    Questions and answers are made of digest words, so no two share more than their first word and
    the near-duplicate filter keeps them; a rewrite differs from its answer because its prompt holds
    that answer.
    """
    h = request_digest(body)
    words = [h[i : i + 6] for i in range(0, 60, 6)]
    props = request_schema(body).get("properties", {})
    if "spatial" in props:
        n_s, n_t = props["spatial"]["minItems"], props["temporal"]["minItems"]
        return json.dumps({
            "spatial": [f"Where is the {words[i]} {words[i + 1]} object in frame?" for i in range(n_s)],
            "temporal": [f"When does the {words[5 + i]} {words[6 + i]} event happen?" for i in range(n_t)],
        })
    if "issues" in props:
        issue = {"statement": f"claims {words[0]}", "reason": f"the clip shows {words[1]}",
                 "evidence": f"frames show {words[2]}", "severity": ("critical", "minor")[int(h[0], 16) % 2],
                 "error_type": ERROR_TYPES[int(h[1], 16) % len(ERROR_TYPES)]}
        return json.dumps({"issues": [issue], "summary": f"replace {words[0]} with {words[1]}"})
    return f"The clip shows {words[0]} then {words[1]} near {words[2]}."


def video_digest(body: dict) -> str:
    """A fingerprint of the frames a request carries: which video it is about."""
    urls = [part.get("image_url", {}).get("url", "") for m in body.get("messages", [])
            if isinstance(m.get("content"), list) for part in m["content"] if part.get("type") == "image_url"]
    return hashlib.sha256("".join(urls).encode()).hexdigest()

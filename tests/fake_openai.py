"""OpenAI-compatible test servers on 127.0.0.1: a recorder with scripted failures, and a stand-in model.

A real server (`transformers serve` with the tiny model) is exercised in test_openai_backend.py, but it
ignores `response_format` and cannot be told to fail; these small `http.server` handlers play the
failures a client must survive (5xx, timeouts, non-JSON bodies, 4xx, concurrency limits) and record
what the client sent. `model_reply` answers like a model that always follows the JSON Schema, as a
function of the request alone, so two runs against it must produce the same data.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# behaviour(n, body, headers) -> (HTTP status, payload, seconds to wait before answering)
Behaviour = Callable[[int, dict, dict], tuple[int, str | bytes, float]]


class FakeServer:
    """A threaded HTTP server whose reply to the n-th POST is `behaviour(n, body, headers)`."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with server._lock:
                    n = len(server.bodies)
                    server.bodies.append(json.loads(raw))
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, payload, delay = server.behaviour(n, server.bodies[n], server.headers[n])
                    time.sleep(delay)
                    data = payload.encode() if isinstance(payload, str) else payload
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, finish: str = "stop") -> str:
    return json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]}
    )


ERROR_TYPES = ("factual_inaccuracy", "temporal_ordering", "spatial_relationship", "object_hallucination",
               "causal_reasoning", "detail_omission")


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
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema") or {}
    props = schema.get("properties", {})
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

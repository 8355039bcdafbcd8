"""The OpenAI-compatible client: against a real `transformers serve` on 127.0.0.1, and fault servers.

The fault servers (tests/helpers/fake_openai.py) are small `http.server` handlers: they play the server failures the
client must survive (5xx, timeouts, non-JSON bodies, 4xx, limits on concurrency) and record what the
client sent, which a real server does not expose.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.helpers.fake_openai import Behaviour, CutOff, FakeServer, Trickle, WithHeaders, completion, request_schema
from videosavi.builders.generate.models.base import GenerationRequest
from videosavi.builders.generate.models.grammar import json_schema_ebnf
from videosavi.builders.generate.models.loader import load_backend
from videosavi.builders.generate.models.openai_backend import OpenAIBackend
from videosavi.builders.generate.models.tiny import ensure_tiny_model
from videosavi.config import AnyModelConfig, model_config
from videosavi.errors import ModelError
from videosavi.hub.serve import free_port
from videosavi.schemas import Critique
from videosavi.schemas.json_schema import json_schema


def video(seed: int = 0, frames: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 64, 64, 3), dtype=np.uint8)


def request(seed: int = 0, frames: np.ndarray | None = None, **kw: Any) -> GenerationRequest:
    params = {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 16, **kw}
    msgs = [
        {"role": "system", "content": "You watch videos."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]},
    ]
    return GenerationRequest(frames=video(seed) if frames is None else frames, messages=msgs, seed=seed, **params)


def config(base_url: str, **kw: Any) -> AnyModelConfig:
    values = {
        "backend": "openai",
        "name_or_path": "served-model",
        "base_url": base_url,
        "max_retries": 2,
        "request_timeout_s": 5.0,
        "concurrency": 4,
        **kw,
    }
    return model_config(**values)


@pytest.fixture
def fake() -> Iterator[Callable[[Behaviour], FakeServer]]:
    servers: list[FakeServer] = []

    def make(behaviour: Behaviour) -> FakeServer:
        servers.append(FakeServer(behaviour))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def echo_seed(n: int, body: dict, headers: dict) -> tuple[int, str, float]:
    return 200, completion(f"seed {body.get('seed')}"), 0.0


# -- what the client sends -------------------------------------------------------------------------


def test_payload_frames_schema_and_key(fake, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from PIL import Image

    monkeypatch.setenv("VIDEOSAVI_TEST_KEY", "sk-secret-123")
    server = fake(echo_seed)
    backend = load_backend(config(server.url, api_key_env="VIDEOSAVI_TEST_KEY"))
    # smooth frames, so JPEG keeps them close to the original and each stays recognisable
    ramp = np.linspace(0, 150, 64)
    frames = np.stack([np.broadcast_to(ramp[None, :, None] + 20 * t, (64, 64, 3)) for t in range(5)]).astype(np.uint8)
    schema = json_schema(Critique)
    with caplog.at_level(logging.DEBUG):
        [res] = backend.generate([request(3, frames, json_schema=schema, temperature=0.2, max_new_tokens=99)])
    backend.close()
    assert res.text == "seed 3" and res.finish_reason == "stop"
    body, headers = server.bodies[0], server.headers[0]
    assert headers["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in caplog.text + repr(backend)
    assert body["model"] == "served-model"
    assert (body["seed"], body["temperature"], body["top_p"], body["max_tokens"]) == (3, 0.2, 0.9, 99)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["messages"][0] == {"role": "system", "content": "You watch videos."}
    parts = body["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 5 and parts[-1] == {"type": "text", "text": "What happens?"}
    url = images[2]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert decoded.shape == (64, 64, 3)
    errors = [np.abs(decoded.astype(int) - f.astype(int)).mean() for f in frames]
    assert int(np.argmin(errors)) == 2 and errors[2] < 3  # a JPEG of that very frame


def test_video_url_transport_sends_one_mp4(fake) -> None:
    import av

    server = fake(echo_seed)
    backend = OpenAIBackend(config(server.url, video_transport="video_url", constrained=False))
    frames = video(2, 6)
    backend.generate([request(1, frames, json_schema=json_schema(Critique))])
    backend.close()
    body = server.bodies[0]
    assert "response_format" not in body  # constrained: false
    [part] = [p for p in body["messages"][1]["content"] if p["type"] != "text"]
    assert part["type"] == "video_url"
    url = part["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    with av.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


# -- retries and failures ------------------------------------------------------------------------------


def test_500_twice_then_success(fake) -> None:
    server = fake(lambda n, b, h: (500, "overloaded", 0.0) if n < 2 else (200, completion("finally"), 0.0))
    backend = OpenAIBackend(config(server.url, max_retries=3), backoff_s=0.01)
    [res] = backend.generate([request()])
    assert (res.text, res.finish_reason, len(server.bodies)) == ("finally", "stop", 3)


def test_timeout_is_retried_then_reported(fake) -> None:
    server = fake(lambda n, b, h: (200, completion("too late"), 1.5))
    backend = OpenAIBackend(config(server.url, max_retries=1, request_timeout_s=0.3), backoff_s=0.01)
    start = time.monotonic()
    [res] = backend.generate([request()])
    assert res.finish_reason == "error" and "timed out" in res.error
    assert len(server.bodies) == 2
    assert time.monotonic() - start < 1.4  # gave up on its own timeout, did not wait for the server


def test_non_json_body_is_retried_then_reported(fake) -> None:
    server = fake(lambda n, b, h: (200, "<html>gateway says hi</html>", 0.0))
    backend = OpenAIBackend(config(server.url, max_retries=2), backoff_s=0.01)
    [res] = backend.generate([request()])
    assert res.finish_reason == "error" and "not JSON" in res.error and "gateway" in res.error
    assert len(server.bodies) == 3


def test_4xx_is_not_retried_but_429_is(fake) -> None:
    server = fake(lambda n, b, h: (400, '{"error": "bad schema"}', 0.0))
    [res] = OpenAIBackend(config(server.url, max_retries=3), backoff_s=0.01).generate([request()])
    assert res.finish_reason == "error" and "400" in res.error and "bad schema" in res.error
    assert len(server.bodies) == 1
    limited = fake(lambda n, b, h: (429, "slow down", 0.0) if n == 0 else (200, completion("ok"), 0.0))
    [res] = OpenAIBackend(config(limited.url, max_retries=3), backoff_s=0.01).generate([request()])
    assert res.text == "ok" and len(limited.bodies) == 2


def test_a_server_that_dies_turns_calls_into_errors_naming_it(fake) -> None:
    server = fake(echo_seed)
    backend = OpenAIBackend(config(server.url, max_retries=1), backoff_s=0.01)
    server.close()
    [res] = backend.generate([request()])
    backend.close()
    assert res.finish_reason == "error" and "connection error" in res.error and server.url in res.error


def test_one_bad_call_does_not_sink_the_batch_and_order_is_kept(fake) -> None:
    def behaviour(n: int, body: dict, headers: dict) -> tuple[int, str, float]:
        if body["seed"] == 13:
            return 422, "unprocessable", 0.0
        return 200, completion(f"seed {body['seed']}", "length" if body["seed"] == 4 else "stop"), 0.01 * (n % 3)

    server = fake(behaviour)
    backend = OpenAIBackend(config(server.url, concurrency=3), backoff_s=0.01)
    seeds = [4, 13, 1, 2, 3]
    results = backend.generate([request(s) for s in seeds])
    assert [r.finish_reason for r in results] == ["length", "error", "stop", "stop", "stop"]
    assert [r.text for r in results if r.ok] == ["seed 4", "seed 1", "seed 2", "seed 3"]


def test_concurrency_limit(fake) -> None:
    server = fake(lambda n, b, h: (200, completion("x"), 0.2))
    backend = OpenAIBackend(config(server.url, concurrency=2))
    frames = video(0)
    backend.generate([request(s, frames) for s in range(6)])
    backend.close()
    assert server.max_in_flight == 2


# -- the server's kind: structured-output options and seeds ----------------------------------------------


def _schema_request() -> GenerationRequest:
    return request(5, json_schema=json_schema(Critique), temperature=0.2)


@pytest.mark.parametrize("owner", ["vllm", "sglang", "someone"])
def test_structured_output_options_follow_the_detected_server(fake, owner: str) -> None:
    server = fake(echo_seed)
    server.models, server.owned_by, server.version = ["served-model"], owner, "0.32.0"
    backend = OpenAIBackend(config(server.url))
    backend.generate([_schema_request(), request(6)])
    backend.close()
    kind = {"vllm": "vllm", "sglang": "sglang"}.get(owner, "openai")
    assert backend.server.kind == kind and backend.server.detected
    # the two requests go out concurrently: tell them apart by their temperature, not by arrival order
    schema_body, text_body = sorted(server.bodies, key=lambda b: b["temperature"] != 0.2)
    if kind == "vllm":
        # vLLM takes a grammar per request: the one in-process decoding compiles for the schema
        assert schema_body["structured_outputs"] == {"grammar": json_schema_ebnf(json_schema(Critique))}
        assert request_schema(schema_body) == json_schema(Critique)
        assert "response_format" not in schema_body
        assert "seed" not in schema_body and "seed" not in text_body  # see openai_server.py: kills vLLM's CPU engine
        assert backend.server.version == "0.32.0"
    else:
        assert schema_body["response_format"]["json_schema"]["schema"] == json_schema(Critique)
        assert "structured_outputs" not in schema_body
        assert schema_body["seed"] == 5 and text_body["seed"] == 6
    assert "structured_outputs" not in text_body and "response_format" not in text_body


def test_configured_server_kind_and_seed_option_win(fake) -> None:
    server = fake(echo_seed)
    server.models = ["served-model"]  # owned by "fake": auto would say openai
    backend = OpenAIBackend(config(server.url, server="vllm", send_seed=True))
    backend.generate([_schema_request()])
    backend.close()
    assert backend.server.kind == "vllm" and not backend.server.detected
    assert "structured_outputs" in server.bodies[0] and server.bodies[0]["seed"] == 5


def test_usage_and_prefix_cache_hits_are_counted(fake) -> None:
    def reply(n: int, body: dict, headers: dict) -> tuple[int, str, float]:
        usage = {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 64 * (n > 0)}}
        return 200, completion("ok", usage=usage), 0.0

    server = fake(reply)
    backend = OpenAIBackend(config(server.url, concurrency=1))
    frames = video(4)
    backend.generate([request(0, frames)])
    backend.generate([request(1, frames), request(2, frames)])
    backend.close()
    st = backend.stats
    assert (st.server_prompt_tokens, st.server_cached_tokens, st.server_completion_tokens) == (300, 128, 21)
    assert (st.repeat_video_calls, st.repeat_video_calls_cached) == (2, 2)
    assert st.as_dict()["server_cached_share"] == pytest.approx(128 / 300, abs=1e-4)


# -- what a user gets wrong first: one line each -------------------------------------------------------


def test_server_down_is_one_line_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelError, match=r"cannot reach the model server at http://127\.0\.0\.1:\d+/v1 .*start it"):
        OpenAIBackend(config(url))


def test_base_url_without_v1_is_one_line(fake) -> None:
    server = fake(echo_seed)
    root = server.url.removesuffix("/v1")
    with pytest.raises(ModelError) as err:
        OpenAIBackend(config(root))
    assert "answered 404" in str(err.value) and f"{root}/v1" in str(err.value) and "\n" not in str(err.value)


def test_wrong_model_name_names_the_served_ones(fake) -> None:
    server = fake(echo_seed)
    server.models = ["Qwen/Qwen2-VL-7B-Instruct"]
    with pytest.raises(ModelError, match=r"serves Qwen/Qwen2-VL-7B-Instruct, not 'served-model'.*--served-model-name"):
        OpenAIBackend(config(server.url))
    assert not server.bodies  # refused before any generation


# -- a total deadline: a server that trickles cannot hold a call ------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["trickled-body", "trickled-headers"])
def test_a_trickled_reply_is_cut_at_the_total_deadline(fake, headers_too: bool) -> None:
    body = completion("x" * 200).encode()
    server = fake(lambda n, b, h: (200, Trickle(body, per_byte_s=0.1, headers_too=headers_too), 0.0))
    backend = OpenAIBackend(config(server.url, max_retries=1, request_timeout_s=1.0), backoff_s=0.01)
    start = time.monotonic()
    [res] = backend.generate([request()])
    elapsed = time.monotonic() - start
    backend.close()
    # each of the two attempts gets one second in all, although a byte arrives every 0.1 s
    assert res.finish_reason == "error" and "timed out" in res.error and "within 1 s" in res.error
    assert len(server.bodies) == 2 and 1.9 < elapsed < 4.0


def test_a_reply_cut_off_mid_body_is_retried(fake) -> None:
    whole = completion("the whole reply").encode()
    server = fake(lambda n, b, h: (200, CutOff(whole, keep=len(whole) // 2), 0.0) if n == 0 else (200, whole, 0.0))
    backend = OpenAIBackend(config(server.url, max_retries=2), backoff_s=0.01)
    [res] = backend.generate([request()])
    backend.close()
    assert res.text == "the whole reply" and len(server.bodies) == 2


# -- a real server --------------------------------------------------------------------------------------

# `transformers serve` as shipped, started in-process after two environment fixes for this machine's
# CPU torch: the torchvision op shim (the same one videosavi uses), and image decoding through PIL
# because torchvision's C image decoder does not load beside the CPU wheel. The server code is as is.
_LAUNCHER = """
import sys
from videosavi.compat import ensure_torchvision_importable
ensure_torchvision_importable()
import transformers.image_processing_backends as backends
from torchvision.transforms.functional import pil_to_tensor
from transformers.image_utils import load_image
backends.load_image_as_tensor = lambda image, timeout=None: pil_to_tensor(load_image(image).convert("RGB"))
from transformers.cli.transformers import main
sys.argv = ["transformers", "serve", *sys.argv[1:]]
sys.exit(main())
"""


@pytest.fixture(scope="module")
def transformers_server(videosavi_cache: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    pytest.importorskip("openai", reason="transformers serve needs the openai package (pip install openai)")
    os.environ["VIDEOSAVI_CACHE"] = videosavi_cache
    model_path = ensure_tiny_model("tiny-qwen2-vl")
    port = free_port()
    logs = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [
        sys.executable,
        "-c",
        _LAUNCHER,
        str(model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    with open(logs, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start:\n{logs.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", model_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_real_transformers_serve(transformers_server: tuple[str, Path]) -> None:
    url, model_path = transformers_server
    backend = load_backend(config(url, name_or_path=str(model_path), concurrency=2, request_timeout_s=120))
    assert backend.info.backend == "openai" and backend.info.name_or_path == str(model_path)
    requests_ = [
        request(0, max_new_tokens=6, temperature=0.0),
        request(1, video(1, 6), max_new_tokens=12, json_schema=json_schema(Critique)),  # server ignores the schema
        request(2, max_new_tokens=8, temperature=0.9, top_p=0.95),
    ]
    results = backend.generate(requests_)
    for r in results:
        assert r.ok, r.error
    # greedy on the tiny model never picks EOS, so it runs to its limit; the server reports that
    assert results[0].finish_reason == "length" and results[0].text
    # the served model is pinned: asking for another is a 400, reported and not retried
    other = OpenAIBackend(config(url, name_or_path="another-model", max_retries=3), backoff_s=5.0)
    start = time.monotonic()
    [bad] = other.generate([request(0, max_new_tokens=4)])
    assert bad.finish_reason == "error" and "400" in bad.error
    assert time.monotonic() - start < 5.0
    backend.close()
    other.close()



def test_retry_after_is_honoured(fake) -> None:
    server = fake(lambda n, b, h: (429, WithHeaders("slow down", {"Retry-After": "1.5"}), 0.0) if n == 0
                  else (200, completion("ok"), 0.0))
    backend = OpenAIBackend(config(server.url, max_retries=2), backoff_s=0.01)
    start = time.monotonic()
    [res] = backend.generate([request()])
    backend.close()
    assert res.text == "ok" and 1.5 <= time.monotonic() - start < 5.0  # waited as asked, not 0.01 s

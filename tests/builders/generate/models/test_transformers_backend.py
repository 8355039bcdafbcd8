"""The in-process transformers backend on tiny models: batching, the determinism contract, JSON grammars."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from videosavi.builders.generate.models.base import GenerationRequest, ModelBackend
from videosavi.builders.generate.models.loader import load_backend
from videosavi.builders.generate.models.sampling import gumbel_noise, sample_scores, top_p_filter
from videosavi.builders.generate.models.tiny import ensure_tiny_model
from videosavi.builders.generate.models.weights import local_revision
from videosavi.config import model_config
from videosavi.errors import ConfigError, ModelError
from videosavi.schemas import Critique, question_set_model
from videosavi.schemas.json_schema import json_schema

ARCHS = ["tiny-qwen2-vl", "tiny-internvl"]
QUESTIONS = question_set_model(3, 3)


@pytest.fixture(scope="module")
def backends(videosavi_cache: str) -> Iterator[dict[str, ModelBackend]]:
    os.environ["VIDEOSAVI_CACHE"] = videosavi_cache
    loaded = {name: load_backend(model_config(backend="tiny", name_or_path=name, batch_size=8)) for name in ARCHS}
    yield loaded
    for b in loaded.values():
        b.close()


def video(seed: int, frames: int = 8, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, h, w, 3), dtype=np.uint8)


def ask(text: str, system: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    return [*msgs, {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]


def req(seed: int = 0, frames: np.ndarray | None = None, messages: list[dict] | None = None, **kw) -> GenerationRequest:
    params = {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 24, **kw}
    return GenerationRequest(
        frames=video(seed) if frames is None else frames,
        messages=messages or ask("What happens?"),
        seed=seed,
        **params,
    )


@contextmanager
def settings(backend: ModelBackend, **updates) -> Iterator[ModelBackend]:
    """Operational settings (batch size, constrained) changed for one block."""
    saved = backend.cfg
    backend.cfg = saved.model_copy(update=updates)
    try:
        yield backend
    finally:
        backend.cfg = saved


# -- sampling primitives -------------------------------------------------------------------------


def test_gumbel_max_samples_the_softmax() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, float("-inf")])
    counts = torch.zeros(5)
    n = 4000
    for s in range(n):
        counts[int(sample_scores(logits, 1.0, 1.0, seed=s, step=3).argmax())] += 1
    expected = torch.softmax(logits, -1) * n
    assert counts[4] == 0  # masked tokens are never drawn
    assert torch.allclose(counts[:4], expected[:4], rtol=0.12, atol=15), (counts, expected)


def test_top_p_and_temperature() -> None:
    logits = torch.tensor([3.0, 2.0, 0.0, -2.0])
    kept = torch.isfinite(top_p_filter(logits, 0.8))
    assert kept.tolist() == [True, True, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.01)).sum() == 1
    assert torch.equal(sample_scores(logits, 0.0, 0.5, seed=1, step=0), logits)  # greedy untouched
    assert torch.equal(gumbel_noise(5, 2, 10), gumbel_noise(5, 2, 10))
    assert not torch.equal(gumbel_noise(5, 2, 10), gumbel_noise(5, 3, 10))


# -- the backend ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHS)
def test_info_and_batched_generation(name: str, backends: dict[str, ModelBackend]) -> None:
    backend = backends[name]
    assert isinstance(backend, ModelBackend)
    assert backend.info.backend == "tiny"
    assert backend.info.name_or_path == name
    assert backend.info.revision == local_revision(ensure_tiny_model(name))
    assert backend.info.architecture == name.removeprefix("tiny-").replace("-", "_")
    requests = [req(seed=s, max_new_tokens=8 + s) for s in range(5)]
    results = backend.generate(requests)
    assert len(results) == 5
    for r, rq in zip(results, requests, strict=True):
        assert r.finish_reason in ("stop", "length") and r.error is None
        n_tokens = len(backend.tokenizer.encode(r.text, add_special_tokens=False))
        assert n_tokens <= rq.max_new_tokens + 2  # decode/re-encode may merge bytes differently
    assert len({r.text for r in results}) > 1


@pytest.mark.parametrize("name", ARCHS)
def test_same_request_same_text_whatever_the_batch(name: str, backends: dict[str, ModelBackend]) -> None:
    backend = backends[name]
    schema = json_schema(Critique)
    target = req(seed=7, max_new_tokens=40)
    target_json = req(seed=3, messages=ask("Critique the answer."), max_new_tokens=200, json_schema=schema)
    others = [
        req(
            seed=1,
            frames=video(11, 8, 96, 128),
            temperature=0.7,
            top_p=0.9,
            max_new_tokens=10,
            messages=ask("A much longer prompt, with many more words in it than any of the other prompts here."),
        ),
        GenerationRequest(
            frames=None,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi."}]},
            ],
            temperature=0.0,
            max_new_tokens=30,
            seed=2,
        ),
        req(seed=5, frames=video(12), temperature=0.2, max_new_tokens=120, json_schema=schema),
    ]
    alone = backend.generate([target])[0]
    alone_json = backend.generate([target_json])[0]
    mixed = backend.generate([others[0], target, others[1], target_json, others[2]])
    assert mixed[1] == alone
    assert mixed[3] == alone_json
    with settings(backend, batch_size=2):
        reordered = backend.generate([others[2], target_json, others[0], others[1], target])
    assert reordered[4] == alone and reordered[1] == alone_json
    # a different seed gives different text: the seed is really used
    assert backend.generate([req(seed=8, max_new_tokens=40)])[0].text != alone.text


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize(
    ("model", "max_new_tokens"), [(QUESTIONS, 160), (Critique, 200)], ids=["questions", "critique"]
)
def test_constrained_json_from_random_weights(name, model, max_new_tokens, backends) -> None:
    """The demo's sampling params; every finished reply is JSON of the schema's shape, most validate."""
    backend = backends[name]
    schema = json_schema(model)
    requests = [
        req(seed=s, messages=ask("Reply in JSON."), max_new_tokens=max_new_tokens, json_schema=schema) for s in range(8)
    ]
    results = backend.generate(requests)
    valid = 0
    for r in results:
        if r.finish_reason == "stop":
            data = json.loads(r.text)
            assert list(data) == list(schema["properties"])  # grammar order, no extra keys
            if model is QUESTIONS:
                assert len(data["spatial"]) == 3 and len(data["temporal"]) == 3
                assert all(len(q) >= 8 for q in data["spatial"] + data["temporal"])
            else:
                assert all(i["severity"] in ("critical", "minor") for i in data["issues"])
        try:
            model.model_validate_json(r.text)
            valid += 1
        except ValueError:
            pass
    assert valid >= 6, [r.text for r in results]


def test_unconstrained_config_ignores_schema(backends: dict[str, ModelBackend]) -> None:
    backend = backends["tiny-qwen2-vl"]
    schema = json_schema(Critique)
    with settings(backend, constrained=False):
        texts = [
            r.text for r in backend.generate([req(seed=s, json_schema=schema, max_new_tokens=30) for s in range(4)])
        ]
    assert not any(t.startswith('{"issues": ') for t in texts)
    constrained = backend.generate([req(seed=s, json_schema=schema, max_new_tokens=30) for s in range(4)])
    assert all(r.text.startswith('{"issues": ') for r in constrained)


def test_finish_reasons_and_greedy(backends: dict[str, ModelBackend]) -> None:
    backend = backends["tiny-qwen2-vl"]
    schema = json_schema(QUESTIONS)
    cut, done, greedy_a, greedy_b = backend.generate(
        [
            req(seed=1, json_schema=schema, max_new_tokens=4),
            req(seed=1, json_schema=schema, temperature=0.0, max_new_tokens=160),
            req(seed=1, temperature=0.0, max_new_tokens=5),
            req(seed=2, temperature=0.0, max_new_tokens=5),
        ]
    )
    assert cut.finish_reason == "length"
    assert '{"spatial": ["'.startswith(cut.text) and len(cut.text) > 1  # 4 tokens of the forced opening
    with pytest.raises(ValueError):
        json.loads(cut.text)
    assert done.finish_reason == "stop"
    QUESTIONS.model_validate_json(done.text)
    assert greedy_a.finish_reason == "length"
    assert greedy_a.text == greedy_b.text  # temperature 0 ignores the seed


def test_bad_request_fails_alone(backends: dict[str, ModelBackend], caplog: pytest.LogCaptureFixture) -> None:
    backend = backends["tiny-qwen2-vl"]
    good = [req(seed=s, max_new_tokens=12) for s in range(3)]
    # same frame count as the good ones, so it shares their batch; its 1:214 aspect ratio makes the
    # Qwen2-VL processor raise, which fails the whole batch and forces the one-by-one fallback
    bad = req(seed=9, frames=video(9, 8, 28, 6000), max_new_tokens=12)
    alone = backend.generate(good)
    with caplog.at_level("WARNING"):
        mixed = backend.generate([good[0], bad, good[1], good[2]])
    assert "one by one" in caplog.text
    assert mixed[1].finish_reason == "error" and mixed[1].error
    assert [mixed[0], mixed[2], mixed[3]] == alone


def test_request_validation() -> None:
    msgs = ask("x")
    with pytest.raises(ValueError, match="uint8"):
        GenerationRequest(frames=np.zeros((2, 8, 8, 3), np.float32), messages=msgs)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        GenerationRequest(frames=np.zeros((8, 8, 3), np.uint8), messages=msgs)
    with pytest.raises(ValueError, match="exactly one video block"):
        GenerationRequest(frames=video(0), messages=[{"role": "user", "content": [{"type": "text", "text": "x"}]}])
    with pytest.raises(ValueError, match="no frames"):
        GenerationRequest(frames=None, messages=msgs)
    with pytest.raises(ValueError, match="top_p"):
        GenerationRequest(frames=video(0), messages=msgs, top_p=0)


def test_load_backend_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="vllm serve"):  # refused where the config is read, with what to use
        model_config(backend="vllm", name_or_path="x")
    with pytest.raises(ConfigError, match="base_url"):
        model_config(backend="openai", name_or_path="x")
    with pytest.raises(ModelError, match="tiny-qwen2-vl"):
        load_backend(model_config(backend="tiny", name_or_path="tiny-nope"))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelError, match="cannot load model"):
        load_backend(model_config(backend="transformers", name_or_path=str(empty)))

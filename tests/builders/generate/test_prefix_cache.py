"""Each video encoded once: prefix reuse in the transformers backend, media reuse in the HTTP client.

The in-process checks compare a backend with prefix reuse against one without (`prefix_cache_mb: 0`,
the path that sends every prompt in full) on the tiny models of all three architectures, in fp32 on
CPU: same results for mixed batches of stages and videos, logits within 1e-5, and counters that
match lengths computed independently with the processor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.build_helpers import rows, small_options
from tests.helpers.fake_openai import FakeServer, completion, video_digest
from videosavi.builders.generate.call_keys import video_key
from videosavi.builders.generate.models import openai_backend
from videosavi.builders.generate.models.base import GenerationRequest
from videosavi.builders.generate.models.loader import load_backend
from videosavi.builders.generate.models.prefix_cache import Prefix, PrefixCache
from videosavi.builders.generate.models.stats import BackendStats
from videosavi.builders.generate.models.transformers_backend import TransformersBackend, _Prompt
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.builders.generate.stages.critique import critique_messages, critique_schema
from videosavi.builders.generate.stages.questions import question_messages, question_schema
from videosavi.builders.generate.stages.refine import refine_messages
from videosavi.config import model_config
from videosavi.schemas import Critique, CritiqueIssue

ARCHS = ["tiny-qwen2-vl", "tiny-internvl", "tiny-llava-onevision"]
PROMPTS = PromptSet.load()
CRITIQUE = Critique(
    issues=[CritiqueIssue(statement="the cup is blue", reason="it is red", evidence="frame 2", severity="critical",
                          error_type="factual_inaccuracy")],
    summary="The colour is wrong.",
)


def video(seed: int, frames: int = 8, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, h, w, 3), dtype=np.uint8)


VIDEOS = {"a": video(1), "b": video(2, 8, 96, 128), "c": video(3, 6)}


def stage_request(stage: str, vid: str, seed: int, temperature: float = 1.2, keyed: bool = True) -> GenerationRequest:
    """A request as the pipeline makes it for `stage` about video `vid` (real prompts and schemas)."""
    frames = VIDEOS[vid]
    n = len(frames)
    question = f"What does the person hold in frame {seed % 5}?"
    messages, schema, budget = {
        "question": (question_messages(PROMPTS, n, 3, 3), question_schema(3, 3), 120),
        "answer": (answer_messages(PROMPTS, question, n), None, 24),
        "critique": (critique_messages(PROMPTS, question, "A blue cup.", n), critique_schema(), 60),
        "refine": (refine_messages(PROMPTS, question, "A blue cup.", CRITIQUE, n), None, 32),
    }[stage]
    return GenerationRequest(frames=frames, messages=messages, temperature=temperature, top_p=0.95,
                             max_new_tokens=budget, json_schema=schema, seed=seed,
                             video_key=video_key(f"sha-{vid}", list(range(n))) if keyed else None)


def mixed_requests() -> list[GenerationRequest]:
    """Every stage about three videos (two frame sizes, two frame counts), sampled and greedy, with a
    text-only call among them; interleaved so batches mix videos and stages."""
    out = []
    stages = ["question", "answer", "critique", "refine"]
    for i in range(12):
        out.append(stage_request(stages[i % 4], "abc"[i % 3], seed=100 + i, temperature=0.0 if i % 5 == 0 else 1.2,
                                 keyed=i % 4 != 1))
    out.insert(5, GenerationRequest(frames=None, messages=[{"role": "user", "content": "Say hi."}], seed=7,
                                    temperature=1.0, max_new_tokens=12))
    return out


@pytest.fixture(scope="module")
def pairs(videosavi_cache: str) -> Iterator[dict[str, tuple[TransformersBackend, TransformersBackend]]]:
    """Per architecture: (with prefix reuse, without), both fp32 on CPU."""
    os.environ["VIDEOSAVI_CACHE"] = videosavi_cache
    loaded = {
        name: (load_backend(model_config(backend="tiny", name_or_path=name, batch_size=3)),
               load_backend(model_config(backend="tiny", name_or_path=name, batch_size=3, prefix_cache_mb=0)))
        for name in ARCHS
    }
    yield loaded  # type: ignore[misc]
    for a, b in loaded.values():
        a.close()
        b.close()


def fresh(backend: TransformersBackend) -> TransformersBackend:
    """The backend with empty counters and an empty prefix cache (the model is shared)."""
    backend.stats = BackendStats()
    backend.prefix_cache.clear()
    backend.prefix_cache.stats = backend.stats
    if backend._reuse is not None:
        backend._reuse.stats = backend.stats
    return backend


# -- results -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHS)
def test_reuse_gives_the_same_results(name: str, pairs) -> None:
    cached, full = (fresh(b) for b in pairs[name])
    requests = mixed_requests()
    want = full.generate(requests)
    got = cached.generate(requests)
    assert got == want
    assert all(r.ok for r in got)
    assert len({r.text for r in got}) > 6  # sampled rows really differ: the comparison is not vacuous
    # in a different order and batching (and from a warm cache) still the same
    order = list(reversed(range(len(requests))))
    again = cached.generate([requests[i] for i in order])
    assert [again[order.index(i)] for i in range(len(requests))] == want
    # three videos, each under two identities (its key, and the frames' hash for the unkeyed calls)
    assert cached.stats.vision_encodes == 6 and full.stats.vision_encodes == 12


@pytest.mark.parametrize("name", ARCHS)
def test_logits_match_the_full_prompt(name: str, pairs) -> None:
    """Step by step, greedy: the same tokens, and logits equal up to float reassociation (< 1e-5)."""
    from transformers import GenerationConfig

    cached, _ = pairs[name]
    fresh(cached)
    requests = [stage_request(s, v, seed=i) for i, (s, v) in enumerate(
        [("question", "a"), ("critique", "b"), ("refine", "a"), ("answer", "b")])]
    prompts = [_Prompt(r, cached.processor.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True),
                       True) for r in requests]
    cfg = GenerationConfig(do_sample=False, max_new_tokens=16, output_logits=True, return_dict_in_generate=True,
                           pad_token_id=cached.pad_id, eos_token_id=[])
    assert cached._reuse is not None
    with torch.inference_mode():
        full = cached.model.generate(**cached._encode(prompts), generation_config=cfg)
        reused = cached.model.generate(**cached._reuse.prepare(requests, [p.text for p in prompts]),
                                       generation_config=cfg)
    # The two runs compute the same logits in differently shaped matmuls, so they agree only up to float
    # reassociation, which depends on the CPU's BLAS blocking: a greedy step whose two best tokens tie within
    # that may pick either on another CPU. So each row is compared up to its first differing token, which
    # must be such a tie; the logits before it must agree.
    full_logits, reused_logits = torch.stack(full.logits), torch.stack(reused.logits)  # (steps, rows, vocab)
    full_tokens, reused_tokens = full.sequences[:, -16:], reused.sequences[:, -16:]
    compared = 0
    for row in range(full_tokens.shape[0]):
        differ = (full_tokens[row] != reused_tokens[row]).nonzero()
        steps = int(differ[0]) if len(differ) else full_tokens.shape[1]
        if steps < full_tokens.shape[1]:
            top = full_logits[steps, row]
            margin = (top.max() - top[reused_tokens[row, steps]]).item()
            assert margin < 1e-4, f"row {row} step {steps}: another token by a margin of {margin}, not a tie"
        diff = (full_logits[:steps, row] - reused_logits[:steps, row]).abs().max().item() if steps else 0.0
        assert diff < 1e-5, diff
        compared += steps
    assert compared >= 32, compared  # not vacuous: most steps are compared


# -- the memory bound ----------------------------------------------------------------------------


def test_memory_bound_forces_recompute_with_equal_results(pairs) -> None:
    cached, full = pairs["tiny-qwen2-vl"]
    requests = [stage_request("answer", v, seed=s) for s in range(2) for v in "ac"]  # a c a c; c is smaller
    fresh(cached)
    cached.generate(requests[:1])
    one_prefix = cached.prefix_cache.bytes
    assert one_prefix > 0
    want = fresh(full).generate(requests)
    bound = 1.5 * one_prefix  # room for one prefix, not two
    saved = cached.prefix_cache.max_bytes
    try:
        fresh(cached).prefix_cache.max_bytes = int(bound)
        with_cfg = cached.cfg
        cached.cfg = with_cfg.model_copy(update={"batch_size": 1})
        got = cached.generate(requests)
        cached.cfg = with_cfg
        stats = cached.stats
        assert got == want
        assert stats.prefix_cache_peak_bytes <= bound
        assert stats.vision_encodes == 4 and stats.prefix_misses == 4 and stats.prefix_evictions == 3
        assert stats.vision_encodes_per_video == 2.0  # two videos, each encoded twice
        fresh(cached).prefix_cache.max_bytes = 10  # smaller than any prefix: nothing is kept
        assert cached.generate(requests) == want
        assert cached.stats.prefix_uncacheable == cached.stats.prefix_misses > 0
        assert len(cached.prefix_cache) == 0
    finally:
        cached.prefix_cache.max_bytes = saved


def test_prefix_cache_is_lru_by_bytes() -> None:
    def prefix(key: str, tokens: int) -> Prefix:  # fp32, one layer, one head of width 4: 32 bytes a token
        k = torch.zeros(1, 1, tokens, 4)
        return Prefix(key=key, ids=list(range(tokens)), layers=[(k, k.clone())])

    stats = BackendStats()
    cache = PrefixCache(100 * 32, stats)
    assert cache.put(prefix("a", 40)) and cache.put(prefix("b", 40))
    assert cache.get("a") is not None  # a is now the most recent
    assert cache.put(prefix("c", 40))  # over the bound: b goes, not a
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.bytes == 80 * 32 and stats.prefix_evictions == 1
    assert not cache.put(prefix("huge", 101))  # larger than the bound: not kept, nothing evicted
    assert len(cache) == 2 and stats.prefix_uncacheable == 1
    assert stats.prefix_cache_peak_bytes == 80 * 32


# -- the counters --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny-qwen2-vl", "tiny-internvl"])
def test_counters_count_known_lengths(name: str, pairs) -> None:
    """Two videos, three calls each: lengths from the processor's own output for each full prompt."""
    cached, full = (fresh(b) for b in pairs[name])
    requests = [stage_request(s, v, seed=i) for i, (s, v) in enumerate(
        [("answer", "a"), ("critique", "a"), ("refine", "a"), ("answer", "b"), ("critique", "b"), ("refine", "b")])]
    prefix, own, total = {}, [], []
    proc = cached.processor
    for r in requests:
        text = proc.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
        ids = proc(text=[text], videos=[r.frames], do_sample_frames=False, input_data_format="channels_last",
                   return_tensors="pt")["input_ids"][0].tolist()
        mm = proc.create_mm_token_type_ids([ids])[0]
        n = max(i for i, t in enumerate(mm) if t) + 1
        assert n < len(ids) and not any(mm[n:])
        prefix[r.video_key] = n
        own.append(len(ids) - n)
        total.append(len(ids))
    minimum = sum(prefix.values()) + sum(own)
    cached.generate(requests)
    full.generate(requests)
    c, f = cached.stats, full.stats
    assert (c.requests, c.video_requests, c.videos, f.videos) == (6, 6, 2, 2)
    assert c.vision_encodes == 2 and f.vision_encodes == 6
    assert c.prefix_misses == 2 and c.prefix_hits == 4
    assert c.prefill_tokens == minimum == c.prefill_min_tokens == f.prefill_min_tokens
    assert f.prefill_tokens == sum(total)
    assert c.vision_encodes_per_video == 1.0 and c.prefill_vs_min == 1.0
    assert f.prefill_vs_min == pytest.approx(sum(total) / minimum)
    assert c.decode_tokens == f.decode_tokens > 0


# -- a build -------------------------------------------------------------------------------------


def test_build_rows_identical_without_reuse(small_reference: Path, small_config: Path, demo_root: Path,
                                            tmp_path: Path) -> None:
    from tests.helpers.build_helpers import write_small_config
    from videosavi.builders.run.runner import run_build

    off = write_small_config(tmp_path / "off.yaml", {"model": {"prefix_cache_mb": 0}})
    res_off = run_build(small_options(off, demo_root, tmp_path / "off"))
    res_on = run_build(small_options(small_config, demo_root, tmp_path / "on"))
    assert rows(res_off.run_dir) == rows(res_on.run_dir) == rows(small_reference)
    videos = res_on.info.counts.videos_done
    assert res_on.model_stats["vision_encodes"] == videos == res_on.model_stats["videos"]
    assert res_off.model_stats["vision_encodes"] == res_off.model_stats["video_requests"] > videos
    assert res_on.model_stats["prefill_tokens"] < res_off.model_stats["prefill_tokens"]


# -- the HTTP client -----------------------------------------------------------------------------


def test_openai_encodes_each_video_once_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []
    real = openai_backend.jpeg_data_url

    def counting(frame: np.ndarray) -> str:
        encoded.append(1)
        return real(frame)

    monkeypatch.setattr(openai_backend, "jpeg_data_url", counting)
    server = FakeServer(lambda n, body, headers: (200, completion(f"call {n}"), 0.0))
    backend = load_backend(model_config(backend="openai", name_or_path="served", base_url=server.url, concurrency=1))
    try:
        stages = ["question", "answer", "critique", "refine"]
        for stage in stages:  # one batch per stage, videos interleaved as a window's calls are
            batch = [stage_request(stage, v, seed=i) for i in range(2) for v in "ab"]
            assert all(r.ok for r in backend.generate(batch))
        # a request without a key is identified by its frames: same video, no new encoding
        backend.generate([stage_request("answer", "a", seed=9, keyed=False)])
    finally:
        backend.close()
        server.close()
    frames = len(VIDEOS["a"]) + len(VIDEOS["b"])
    keyed_videos, unkeyed = 2, 1
    assert len(encoded) == frames + len(VIDEOS["a"])  # each identity once, whatever the batches
    assert backend.stats.media_encodes == keyed_videos + unkeyed
    assert backend.stats.media_hits == 4 * 4 + 1 - backend.stats.media_encodes
    digests = [video_digest(b) for b in server.bodies]
    for start in range(0, 16, 4):  # within each batch the calls went out grouped by video
        batch = digests[start : start + 4]
        assert batch[0] == batch[1] and batch[2] == batch[3] and batch[0] != batch[2]
    # byte-identical media for every call about the same video, across batches
    assert len(set(digests[:16])) == 2
    assert digests[16] == digests[0]

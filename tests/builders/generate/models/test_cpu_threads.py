"""The intra-op thread cap the tiny backend runs `generate` under: set inside, restored after."""

from __future__ import annotations

import pytest
import torch

from videosavi.builders.generate.models.transformers_backend import (
    SMALL_MODEL_PARAMS,
    cpu_thread_limit,
    small_model_threads,
)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_caps_inside_and_restores_after(two_threads: None) -> None:
    with cpu_thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_restores_after_an_error(two_threads: None) -> None:
    with pytest.raises(RuntimeError, match="boom"), cpu_thread_limit(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [None, 0, 2, 4])
def test_no_cap_or_a_cap_above_the_current_count_changes_nothing(two_threads: None, threads: int | None) -> None:
    with cpu_thread_limit(threads):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2


def test_a_small_model_on_the_cpu_runs_on_one_thread_and_a_large_one_is_left_alone() -> None:
    small = torch.nn.Linear(64, 64)  # a tiny model merged after training is still tiny
    assert small_model_threads(small, "cpu") == 1
    assert small_model_threads(small, "cuda") is None
    with torch.device("meta"):
        large = torch.nn.Linear(SMALL_MODEL_PARAMS // 1000, 1000)
    assert small_model_threads(large, "cpu") is None

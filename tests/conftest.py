"""Shared fixtures. Tests make their own videos and tiny models; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never reach the network from tests, and keep caches inside the test session.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def videosavi_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One cache dir per test session (tiny models are built once and reused)."""
    path = os.environ.get("VIDEOSAVI_TEST_CACHE") or str(tmp_path_factory.mktemp("videosavi-cache"))
    os.environ["VIDEOSAVI_CACHE"] = path
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(videosavi_cache: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOSAVI_CACHE", videosavi_cache)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo videos in the three real manifest formats, 3 per source; tests must not change them."""
    from videosavi.builders.demo_data import write_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    write_demo_data(root, videos_per_source=3)
    return root


@pytest.fixture(scope="session")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.build_helpers import write_small_config

    return write_small_config(tmp_path_factory.mktemp("small-config") / "small.yaml")


@pytest.fixture(scope="session")
def small_reference(small_config: Path, demo_root: Path, tmp_path_factory: pytest.TempPathFactory,
                    videosavi_cache: str) -> Path:
    """An undisturbed build of the first SMALL_LIMIT demo videos: what resumed, sharded and Ray builds
    of the same command must equal row for row."""
    from tests.build_helpers import small_options
    from videosavi.builders.runner import run_build

    out = tmp_path_factory.mktemp("small-reference") / "clean"
    run_build(small_options(small_config, demo_root, out))
    return out

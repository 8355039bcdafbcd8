"""Shared fixtures. Tests make their own videos and tiny models; nothing is downloaded."""

from __future__ import annotations

import os

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

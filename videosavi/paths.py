"""Where videosavi keeps things on disk when the user does not say."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """Root of caches (tiny models, the local hub store). `VIDEOSAVI_CACHE` overrides it."""
    env = os.environ.get("VIDEOSAVI_CACHE")
    return Path(env) if env else Path(user_cache_dir("videosavi"))


def default_store() -> Path:
    """The embedded local hub store: bare git repos at `<store>/datasets/<org>/<name>`."""
    env = os.environ.get("VIDEOSAVI_STORE")
    return Path(env) if env else cache_dir() / "store"


def models_dir() -> Path:
    """Where tiny in-code models are saved so they load through the Auto classes."""
    return cache_dir() / "models"

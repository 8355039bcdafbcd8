"""The model section as one class per backend (issue 16): each backend's keys checked where they belong,
`vllm` refused with what to use instead, and every config and build.json written before the split
still loading, with the same data hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.build_helpers import write_small_config
from videosavi.config import (
    BuildConfig,
    OpenAIModelConfig,
    TinyModelConfig,
    TransformersModelConfig,
    load_config,
    model_config,
)
from videosavi.errors import ConfigError

# The flat model section every config and build.json held before the split: all keys, at their defaults.
FLAT_DEFAULTS: dict[str, Any] = {
    "revision": None, "dtype": "auto", "device": "auto", "batch_size": 8, "constrained": True, "base_url": None,
    "api_key_env": "OPENAI_API_KEY", "concurrency": 8, "request_timeout_s": 120.0, "max_retries": 4,
    "video_transport": "images", "prefix_cache_mb": None,
}


def _config_with_model(tmp_path: Path, model: dict[str, Any] | None) -> Path:
    raw = load_config("demo").model_dump(mode="json")
    raw.pop("model")
    if model is not None:
        raw["model"] = model
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(("backend", "key", "value", "owner"), [
    ("tiny", "base_url", "http://127.0.0.1:8000/v1", "openai"),
    ("tiny", "video_transport", "video_url", "openai"),
    ("transformers", "concurrency", 32, "openai"),
    ("openai", "dtype", "bfloat16", "tiny and transformers"),
    ("openai", "prefix_cache_mb", 256, "tiny and transformers"),
])
def test_a_key_of_another_backend_is_refused_by_name(tmp_path: Path, backend: str, key: str, value: Any,
                                                     owner: str) -> None:
    model = {"backend": backend, "name_or_path": "m", key: value}
    if backend == "openai":
        model["base_url"] = "http://127.0.0.1:8000/v1"
    with pytest.raises(ConfigError) as err:
        load_config(_config_with_model(tmp_path, model))
    message = str(err.value)
    assert f"model.{key} is read by the {owner}" in message and repr(backend) in message
    with pytest.raises(ConfigError, match=f"model.{key}"):
        model_config(**model)


def test_vllm_is_refused_with_what_to_use_instead(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"vllm serve.*backend: openai with base_url"):
        load_config(_config_with_model(tmp_path, {"backend": "vllm", "name_or_path": "m"}))
    with pytest.raises(ConfigError, match="must be one of tiny, transformers, openai"):
        model_config(backend="sglang")


def test_each_backend_gets_its_class_and_openai_needs_its_server() -> None:
    assert isinstance(model_config(), TinyModelConfig)
    assert isinstance(model_config(backend="transformers", name_or_path="x", dtype="bfloat16"),
                      TransformersModelConfig)
    served = model_config(backend="openai", name_or_path="x", base_url="http://h/v1", concurrency=2)
    assert isinstance(served, OpenAIModelConfig) and served.concurrency == 2 and not served.in_process
    with pytest.raises(ConfigError, match="base_url"):
        model_config(backend="openai", name_or_path="x")


@pytest.mark.parametrize("backend", ["tiny", "transformers", "openai"])
def test_the_flat_sections_written_before_the_split_load_with_the_same_hash(backend: str) -> None:
    base = load_config("demo").model_dump(mode="json")
    lean: dict[str, Any] = {"backend": backend, "name_or_path": "some/model"}
    flat = {**FLAT_DEFAULTS, **lean}
    if backend == "openai":
        lean["base_url"] = flat["base_url"] = "http://127.0.0.1:8000/v1"
    old = BuildConfig.model_validate({**base, "model": flat})  # as an old build.json holds it
    new = BuildConfig.model_validate({**base, "model": lean})
    assert type(old.model) is type(new.model) and old.data_hash() == new.data_hash()
    # the hashed part keeps the keys it always had, whichever backend
    assert sorted(new.model.data_dump()) == ["backend", "constrained", "dtype", "name_or_path", "revision",
                                             "video_transport"]
    # a change that alters the data still alters the hash
    other = BuildConfig.model_validate({**base, "model": {**lean, "constrained": False}})
    assert other.data_hash() != new.data_hash()


def test_bundled_and_test_configs_load(tmp_path: Path) -> None:
    assert isinstance(load_config("demo").model, TinyModelConfig)
    assert isinstance(load_config("videosavi").model, TransformersModelConfig)
    small = load_config(write_small_config(tmp_path / "small.yaml"))
    assert isinstance(small.model, TinyModelConfig)
    # the training section changes no data of a build
    raw = small.model_dump(mode="json")
    raw["training"] = {"lora_r": 64, "loss": "ipo"}
    assert BuildConfig.model_validate(raw).data_hash() == small.data_hash()


def test_the_renamed_training_batch_size_key_is_named_in_the_error(tmp_path: Path) -> None:
    """`training.batch_size` became `per_device_batch_size` with its flag; an old config says so, not just
    "unexpected keyword"."""
    from videosavi.config import load_config
    from videosavi.errors import ConfigError

    cfg = tmp_path / "old.yaml"
    cfg.write_text("extends: demo\ntraining:\n  batch_size: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"training\.batch_size is now training\.per_device_batch_size"):
        load_config(cfg)
    cfg.write_text("extends: demo\ntraining:\n  per_device_batch_size: 2\n", encoding="utf-8")
    assert load_config(cfg).training.per_device_batch_size == 2

"""LoRA targets found by walking the model: the language model's linears, never vision, projector or head.

The three tiny checkpoints are real saved models of their architectures; Qwen2.5-VL, Qwen3-VL, SmolVLM
and InternVL with a Llama text model are built from small configs on the meta device (no weights),
which is all a structural walk needs.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from videosavi.builders.generate.models.tiny import TINY_BUILDERS
from videosavi.compat import ensure_torchvision_importable
from videosavi.errors import ConfigError
from videosavi.training.lora_targets import check_spec, find_lora_targets, language_model_of
from videosavi.training.model_io import load_policy, resolve_model_source

ensure_torchvision_importable()

ATTENTION_LEAVES = {"q_proj", "k_proj", "v_proj", "o_proj"}


def _linears(module: torch.nn.Module, prefix: str) -> set[str]:
    return {f"{prefix}.{n}" for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)}


def _layer_parts(model: Any) -> tuple[set[str], set[str]]:
    """(attention linears, MLP linears) of every decoder layer, read off the layers' own attributes."""
    scope, decoder = language_model_of(model)
    attn, mlp = set(), set()
    for i, layer in enumerate(decoder.layers):
        attn |= _linears(layer.self_attn, f"{scope}.layers.{i}.self_attn")
        mlp |= _linears(layer.mlp, f"{scope}.layers.{i}.mlp")
    return attn, mlp


def _outside_language_model(model: Any) -> set[str]:
    scope, _ = language_model_of(model)
    return {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not n.startswith(scope + ".")}


@pytest.fixture(scope="module", params=sorted(TINY_BUILDERS))
def tiny_model(request: pytest.FixtureRequest, videosavi_cache: str) -> Any:
    model, _ = load_policy(resolve_model_source(request.param))
    return model


def test_default_is_every_linear_of_every_language_layer_and_nothing_else(tiny_model: Any) -> None:
    targets = find_lora_targets(tiny_model)
    attn, mlp = _layer_parts(tiny_model)
    assert attn and mlp
    assert set(targets.names) == attn | mlp
    assert len(targets.names) == targets.count == len(attn) + len(mlp)
    outside = _outside_language_model(tiny_model)
    head = next(n for n, m in tiny_model.named_modules() if m is tiny_model.get_output_embeddings())
    assert head in outside
    assert any(tower in n for n in outside for tower in ("vision", "visual", "video_tower", "image_tower"))
    assert any("projector" in n or "merger" in n for n in outside)
    assert not set(targets.names) & outside
    assert targets.mode == "all-linear" and {"down_proj", "q_proj"} <= set(targets.leaf_names)
    assert f"{targets.count} modules" in targets.summary()


def test_attention_gives_only_q_k_v_o(tiny_model: Any) -> None:
    targets = find_lora_targets(tiny_model, "attention")
    attn, _ = _layer_parts(tiny_model)
    assert set(targets.names) == attn
    assert set(targets.leaf_names) == ATTENTION_LEAVES
    assert targets.count == 4 * len(language_model_of(tiny_model)[1].layers)


def test_regex_matches_whole_names_of_linear_layers_anywhere(tiny_model: Any) -> None:
    everything = find_lora_targets(tiny_model, ".*")
    all_linear = {n for n, m in tiny_model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(everything.names) == all_linear  # norms, embeddings and convolutions are never targets
    up = find_lora_targets(tiny_model, r".*\.mlp\.up_proj")
    assert up.leaf_names == ("up_proj",) and up.mode == "regex" and up.scope == ""
    with pytest.raises(ConfigError, match="matches no linear layer"):
        find_lora_targets(tiny_model, "up_proj")  # a bare leaf name does not match a whole name


def test_a_regex_that_matches_nothing_is_refused_with_names_that_exist(tiny_model: Any) -> None:
    with pytest.raises(ConfigError) as err:
        find_lora_targets(tiny_model, r".*\.does_not_exist")
    message = str(err.value)
    assert "--lora-targets" in message and "does_not_exist" in message
    scope, _ = language_model_of(tiny_model)
    assert f"{scope}.layers.0." in message  # the language model's names are shown even after the vision tower


def test_bad_specs_are_refused_without_a_model() -> None:
    assert check_spec("all-linear") == "all-linear"
    assert check_spec(r".*q_proj") == r".*q_proj"
    for bad in ("", "  ", "(unclosed"):
        with pytest.raises(ConfigError, match="--lora-targets"):
            check_spec(bad)


def _meta(config: Any) -> Any:
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def _configs() -> dict[str, Any]:
    import transformers as tf

    layers = {"num_hidden_layers": 3}
    return {
        "qwen2_5_vl": tf.Qwen2_5_VLConfig(text_config=layers, vision_config={"depth": 2}),
        "qwen3_vl": tf.Qwen3VLConfig(text_config=layers, vision_config={"depth": 2}),
        "smolvlm": tf.SmolVLMConfig(text_config=layers, vision_config={"num_hidden_layers": 2}),
        "internvl_llama": tf.InternVLConfig(text_config={"model_type": "llama", **layers},
                                            vision_config={"num_hidden_layers": 2}),
    }


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl", "smolvlm", "internvl_llama"])
def test_other_architectures_on_the_meta_device(arch: str) -> None:
    model = _meta(_configs()[arch])
    targets = find_lora_targets(model)
    attn, mlp = _layer_parts(model)
    assert set(targets.names) == attn | mlp and len(attn) == 3 * 4 and len(mlp) == 3 * 3
    assert not set(targets.names) & _outside_language_model(model)
    assert targets.scope in ("model.language_model", "model.text_model")
    assert set(find_lora_targets(model, "attention").names) == attn

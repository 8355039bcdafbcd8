"""`savi model serve`: the vLLM flags a build needs, worked out from the config (issue 21 item 3).

Here with `--dry-run` (the command is printed, nothing starts) and the tiny model's real processor; the
server itself starts in tests/builders/generate/models/test_vllm_engine.py (`make test-vllm`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml
from typer.testing import CliRunner

from tests.helpers.build_helpers import write_small_config
from videosavi.builders.generate.models.vllm_serve import vllm_plan
from videosavi.cli import app
from videosavi.config import load_config


def serve(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["model", "serve", *args])
    return res.exit_code, res.stdout, res.stderr


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_flags_follow_the_config_and_the_url_is_printed(tmp_path: Path) -> None:
    model = {"backend": "openai", "name_or_path": "my-served-vlm", "base_url": "http://127.0.0.1:8123/v1"}
    config = write_small_config(tmp_path / "served.yaml", {"model": model, "frames": {"num_frames": 12}})
    code, out, err = serve("--config", str(config), "--model", "tiny-qwen2-vl", "--dry-run", "--",
                           "--tensor-parallel-size", "1")
    assert code == 0, err
    assert out.strip() == "http://127.0.0.1:8123/v1"  # stdout: the base_url, nothing else
    command = shlex.split(next(line for line in err.splitlines() if line.startswith("vllm serve ")))
    assert command[2].endswith("tiny-qwen2-vl")  # the tiny model's saved folder
    assert flag(command, "--served-model-name") == "my-served-vlm"
    assert (flag(command, "--host"), flag(command, "--port")) == ("127.0.0.1", "8123")
    assert json.loads(flag(command, "--limit-mm-per-prompt")) == {"image": 12, "video": 0}
    assert json.loads(flag(command, "--structured-outputs-config"))["backend"] == "xgrammar"
    assert "--enable-prefix-caching" in command and "--enable-prompt-tokens-details" in command
    assert command[-2:] == ["--tensor-parallel-size", "1"]  # what follows `--` goes to vllm serve
    plan = vllm_plan(load_config(config), "tiny-qwen2-vl")
    assert int(flag(command, "--max-model-len")) == plan.max_model_len >= max(plan.longest.values())
    assert plan.max_model_len % 256 == 0 and plan.frame_tokens > 0


def test_the_context_grows_with_frames_and_budgets(tmp_path: Path) -> None:
    small = load_config(write_small_config(tmp_path / "a.yaml", {"frames": {"num_frames": 4}}))
    large = load_config(write_small_config(tmp_path / "b.yaml", {"frames": {"num_frames": 16}, "stages": {
        "critique": {"max_new_tokens": 700}}}))
    a, b = vllm_plan(small, "tiny-qwen2-vl"), vllm_plan(large, "tiny-qwen2-vl")
    assert b.frame_tokens == 4 * a.frame_tokens  # the processor's count, per image
    grown = (b.frame_tokens - a.frame_tokens) + (700 - 200)
    assert 0 <= b.longest["critique"] - a.longest["critique"] - grown <= 2  # "16 frames" may take a token more
    assert b.max_model_len > a.max_model_len


def test_video_transport_asks_for_one_video(tmp_path: Path) -> None:
    model = {"backend": "openai", "name_or_path": "m", "base_url": "http://10.0.0.5:9000/v1",
             "video_transport": "video_url"}
    plan = vllm_plan(load_config(write_small_config(tmp_path / "v.yaml", {"model": model})), "tiny-qwen2-vl")
    assert plan.limit_mm == {"image": 0, "video": 1} and plan.base_url == "http://10.0.0.5:9000/v1"


def test_more_than_the_model_holds_is_one_line(tmp_path: Path) -> None:
    config = write_small_config(tmp_path / "big.yaml", {"frames": {"num_frames": 256, "resize": [128, 128]}})
    code, _, err = serve("--config", str(config), "--model", "tiny-qwen2-vl", "--dry-run")
    assert code == 2
    assert "more than tiny-qwen2-vl's 4096 positions: lower frames.num_frames" in err
    assert len([x for x in err.splitlines() if x.startswith("error:")]) == 1


def test_without_vllm_it_refuses_in_one_line(tmp_path: Path) -> None:
    code, _, err = serve("--model", "tiny-qwen2-vl", "--vllm", str(tmp_path / "no-vllm-here"))
    assert code == 2
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert "vLLM is not installed" in line and "--vllm PATH" in line


def test_a_demo_config_gets_the_openai_section_to_use(tmp_path: Path) -> None:
    code, out, err = serve("--config", "demo", "--model", "tiny-qwen2-vl", "--dry-run", "--port", "8500")
    assert code == 0 and out.strip() == "http://127.0.0.1:8500/v1"
    snippet = err.split("set model: ", 1)[1].split("}", 1)[0] + "}"
    assert yaml.safe_load(snippet) == {"backend": "openai", "name_or_path": "tiny-qwen2-vl",
                                       "base_url": "http://127.0.0.1:8500/v1"}  # YAML to paste under model:

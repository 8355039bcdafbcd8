"""Doctor rows for a model server (the `openai` backend): what it is, and how its JSON replies are laid out.

A misconfigured server and a broken model look alike in a build (quarantined replies), so the doctor tells
them apart: the `server` row names the server's kind and version as probed (builders/generate/models/openai_server.py),
and the `grammar` row measures the JSON replies the stages got (padding whitespace, raw control characters
inside strings; builders/generate/models/json_layout.py) and names the exact server flags that fix what it found.
On vLLM and SGLang it also asks once with a bare JSON Schema, as other clients do, to show the server's own
default.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from videosavi.builders.generate.models.base import GenerationRequest, ModelBackend
from videosavi.builders.generate.models.json_layout import JsonLayout, json_layout
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.critique import critique_messages, critique_schema
from videosavi.config import BuildConfig
from videosavi.workflows.doctor.check import Check, fail, ok

MAX_PADDING_SHARE = 0.02
VLLM_FLAGS = "--structured-outputs-config '{\"backend\":\"xgrammar\",\"disable_any_whitespace\":true}'"
SGLANG_FLAGS = "--grammar-backend xgrammar --constrained-json-disable-any-whitespace"
STAND_IN_QUESTION = "Which shape moves first, and where does it go?"
STAND_IN_ANSWER = "The red disc moves first, from the left edge to the centre."


def check_server(backend: ModelBackend) -> Check | None:
    """The server's kind, version and models, or None for an in-process backend."""
    server = getattr(backend, "server", None)
    if server is None:
        return None
    models = ", ".join(server.models[:3]) + (", ..." if len(server.models) > 3 else "")
    seed = "sends seeds" if getattr(backend, "send_seed", False) else "sends no seeds"
    return ok("server", f"{getattr(backend, 'base_url', '')}: {server.describe()}, serving {models or '(no list)'}; "
                        f"the build {seed}")


def _layouts(replies: list[str]) -> tuple[list[JsonLayout], int]:
    """Layouts of the replies that are JSON objects, and how many were not JSON at all."""
    layouts, not_json = [], 0
    for text in replies:
        try:
            json.loads(text, strict=False)
        except ValueError:
            not_json += 1
            continue
        layouts.append(json_layout(text))
    return layouts, not_json


def _findings(layouts: list[JsonLayout]) -> list[str]:
    found = []
    padded = [x for x in layouts if x.padding_share > MAX_PADDING_SHARE]
    if padded:
        share = sum(x.padding for x in layouts) / max(1, sum(x.chars for x in layouts))
        found.append(f"padding whitespace in {len(padded)} of {len(layouts)} ({share:.0%} of the characters)")
    control = [x for x in layouts if x.control_in_strings]
    if control:
        found.append(f"raw control characters inside strings in {len(control)} of {len(layouts)}")
    return found


def _fix(kind: str, base_url: str) -> str:
    if kind == "vllm":
        return f"start vLLM with {VLLM_FLAGS} (`savi model serve` sets it)"
    if kind == "sglang":
        return f"start SGLang with {SGLANG_FLAGS}"
    return (f"if {base_url} is vLLM (behind a proxy, it did not say), set model.server: vllm so the build sends its "
            f"grammar; if it is SGLang, model.server: sglang and start it with {SGLANG_FLAGS}; otherwise switch on "
            "compact JSON in the server's structured-output settings")


def server_default_layout(backend: ModelBackend, cfg: BuildConfig, frames: np.ndarray, prompts: PromptSet) -> str:
    """One critique request with a bare JSON Schema (`response_format`), as a client without our grammar sends
    it: what the server's own default grammar does with this model."""
    request = GenerationRequest(frames=frames, messages=critique_messages(prompts, STAND_IN_QUESTION, STAND_IN_ANSWER,
                                                                          len(frames)),
                                temperature=cfg.stages.critique.temperature, top_p=cfg.stages.critique.top_p,
                                max_new_tokens=cfg.stages.critique.max_new_tokens, json_schema=critique_schema())
    send = getattr(backend, "send_plain_schema", None)
    if send is None:
        return ""
    text = send(request)
    if text is None:
        return ""
    layouts, _ = _layouts([text])
    found = _findings(layouts) if layouts else ["a reply that is not JSON"]
    if not found:
        return "; with a bare JSON Schema the server's own grammar is compact too"
    return f"; with a bare JSON Schema (other clients) the server's own grammar gives {', '.join(found)}"


def check_grammar(backend: ModelBackend, cfg: BuildConfig, replies: dict[str, list[str]], frames: np.ndarray,
                  prompts: PromptSet) -> Check | None:
    """The JSON stages' replies as the build gets them: compact, or padded / with raw control characters."""
    server: Any = getattr(backend, "server", None)
    if server is None:
        return None
    texts = [t for stage in ("question", "critique") for t in replies.get(stage, [])]
    kind, base_url = server.kind, getattr(backend, "base_url", "")
    if not texts:
        return fail("grammar", "no JSON reply to look at (the JSON stages made no call that answered)",
                    f"fix the stage rows first; then {_fix(kind, base_url)}")
    default = server_default_layout(backend, cfg, frames, prompts) if kind in ("vllm", "sglang") else ""
    layouts, not_json = _layouts(texts)
    if not_json:
        return fail("grammar", f"{not_json} of {len(texts)} JSON-stage replies are not JSON: the server ignored the "
                               f"structured-output request{default}",
                    "serve the model with vLLM or SGLang (structured outputs; `savi model serve`), or set "
                    "model.constrained: false and accept quarantines")
    found = _findings(layouts)
    sent = "its grammar per request" if kind == "vllm" else "a JSON Schema (response_format)"
    if found:
        return fail("grammar", f"{len(layouts)} JSON replies ({kind}, the build sends {sent}): {'; '.join(found)}"
                               f"{default}", _fix(kind, base_url))
    return ok("grammar", f"{len(layouts)} JSON replies compact, no raw control characters ({kind}, the build sends "
                         f"{sent}){default}")

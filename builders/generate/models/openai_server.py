"""Which OpenAI-compatible server a build talks to, and the per-request options that server understands.

Every server takes `response_format: json_schema`, but what that grammar allows differs, and with it the
data: vLLM's default grammar (xgrammar) lets a model pad JSON with whitespace and write raw control
characters inside strings, which in-process decoding forbids (builders/generate/models/grammar.py). So the request
carries the server's own options where it has them:

- **vLLM** (0.12 and later; checked with 0.32) takes a grammar per request (`structured_outputs: {"grammar":
  EBNF}`). The backend sends the very grammar in-process decoding compiles for the schema (compact layout,
  strict, no control characters in strings; `grammar.json_schema_ebnf`), so the server decodes under our
  rules whatever its own JSON-Schema defaults. (Its per-request `disable_any_whitespace` looks like the
  switch, but 0.32's grammar backends read only the server-wide `--structured-outputs-config`.)
- **SGLang** reads `response_format`; whitespace is a server flag (`--constrained-json-disable-any-whitespace`),
  which `savi doctor` names when it sees padding.
- **Any other server** (the OpenAI API, LMDeploy, `transformers serve`) gets plain `response_format`.

`model.server: auto` (the default) asks the server: `/v1/models` names the owner of each model (`vllm`,
`sglang`) and `/version` (vLLM) or `/get_server_info` (SGLang) the version. The same probe catches the
mistakes a user makes first (server down, base_url without /v1, another model served), each as one line.

Seeds: vLLM's CPU engine dies on a seeded request whose prompt is prefilled in chunks (`RuntimeError: CPU
Generator does not use offset`: vLLM's model runner rewinds a request's generator by an offset after a
discarded partial-prefill sample, which CUDA generators support and CPU generators do not; the rewind came
with vllm-project/vllm#10097, and forks hit the same crash, e.g. RBLN-SW/vllm-rbln#1025). One such request
takes the whole engine down, and every call after it fails. So `seed` is sent to vLLM only when
`model.send_seed: true` (safe on GPU engines, or with `--max-num-batched-tokens` above every prompt);
other servers get it by default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import httpx

from videosavi.builders.generate.models.grammar import json_schema_ebnf
from videosavi.errors import ModelError

ServerKind = Literal["vllm", "sglang", "openai"]
SERVER_KINDS: tuple[str, ...] = ("vllm", "sglang", "openai")
SCHEMA_NAME = "videosavi_output"
_EXCERPT = 200


@dataclass(frozen=True)
class ServerInfo:
    """What the probe learnt: the server's kind and version, the models it serves, and (SGLang) its
    grammar settings."""

    kind: ServerKind
    version: str | None = None
    models: tuple[str, ...] = ()
    detected: bool = False  # kind read from the server (model.server: auto), not configured
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        how = "detected" if self.detected else "configured"
        return f"{self.kind} {self.version or '(version unknown)'} ({how})"


def server_root(base_url: str) -> str:
    """`http://host:8000/v1` -> `http://host:8000`: where vLLM and SGLang serve /version and /health."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def structured_output_fields(kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The request fields that constrain one reply to `schema` on a `kind` server (pure)."""
    if kind == "vllm":
        return {"structured_outputs": {"grammar": json_schema_ebnf(schema)}}
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}}


def seed_is_sent(kind: str, send_seed: bool | None) -> bool:
    """`model.send_seed`, or per server when unset: never to vLLM (see the module docstring)."""
    return send_seed if send_seed is not None else kind != "vllm"


def kind_from_models(data: Any) -> ServerKind:
    """The server kind a `/v1/models` reply shows: vLLM and SGLang name themselves as each model's owner."""
    owners = {str(m.get("owned_by", "")).lower() for m in data.get("data", []) if isinstance(m, dict)}
    if "vllm" in owners:
        return "vllm"
    if "sglang" in owners:
        return "sglang"
    return "openai"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


async def probe_server(client: httpx.AsyncClient, base_url: str, model: str, configured: str,
                       api_key_env: str, timeout_s: float) -> ServerInfo:
    """Ask the server what it is and whether it serves `model`; a `ModelError` (one line, naming the server
    and what to do) when it cannot be used as configured."""
    root = base_url.rstrip("/")
    url = f"{root}/models"
    try:
        resp = await client.get(url, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        raise ModelError(f"the model server at {root} did not answer {url} within {timeout_s:g} s: check that it "
                         "has finished starting (vLLM takes minutes) and that model.base_url is right") from exc
    except httpx.TransportError as exc:
        raise ModelError(f"cannot reach the model server at {root} ({_excerpt(str(exc)) or type(exc).__name__}): "
                         "start it (e.g. `savi model serve --config CONFIG`) or fix model.base_url") from exc
    if resp.status_code in (401, 403):
        raise ModelError(f"the model server at {root} refused the request (HTTP {resp.status_code}): set the API key "
                         f"in ${api_key_env} (model.api_key_env names the variable)")
    if resp.status_code == 404:
        raise ModelError(f"{url} answered 404: model.base_url must be the server's API root, which usually ends in "
                         f"/v1 (e.g. {server_root(root)}/v1)")
    if resp.status_code >= 400:
        raise ModelError(f"the model server at {root} answered HTTP {resp.status_code} to {url}: "
                         f"{_excerpt(resp.text)}")
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ModelError(f"{url} did not answer like an OpenAI-compatible server (no model list): check "
                         f"model.base_url ({_excerpt(resp.text)!r})")
    models = tuple(str(m["id"]) for m in data["data"] if isinstance(m, dict) and "id" in m)
    if models and model not in models:
        shown = ", ".join(models[:5]) + (", ..." if len(models) > 5 else "")
        raise ModelError(f"the model server at {root} serves {shown}, not {model!r}: set model.name_or_path to the "
                         f"served name, or serve the model under that name (vllm serve ... --served-model-name "
                         f"{model})")
    detected = configured == "auto"
    kind = kind_from_models(data) if detected else cast(ServerKind, configured)  # the config allows only the kinds
    version, settings = await _version(client, root, kind, timeout_s)
    return ServerInfo(kind=kind, version=version, models=models, detected=detected, settings=settings)


async def _version(client: httpx.AsyncClient, root: str, kind: str,
                   timeout_s: float) -> tuple[str | None, dict[str, Any]]:
    """The server's version (and SGLang's grammar settings); None where the server does not say."""
    base = server_root(root)
    paths = {"vllm": ["/version"], "sglang": ["/get_server_info", "/server_info"]}.get(kind, [])
    for path in paths:
        try:
            resp = await client.get(base + path, timeout=timeout_s)
            data = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            keep = ("grammar_backend", "constrained_json_disable_any_whitespace", "constrained_json_whitespace_pattern")
            settings = {k: data[k] for k in keep if k in data}
            version = data.get("version")
            return (str(version) if version is not None else None), settings
    return None, {}

"""JSON Schema for constrained generation, derived from the pydantic models.

Decoders (xgrammar, vLLM guided decoding, OpenAI-style `response_format`) take the schema as is;
pydantic already emits `maxLength`/`minItems`/`maxItems` from the field bounds and
`additionalProperties: false` from `extra="forbid"`. We inline `$defs` because some servers reject
references, and list every property as required so "strict" modes accept it.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline(copy.deepcopy(defs[name]), defs)
        return {k: _inline(v, defs) for k, v in node.items() if k not in ("$defs", "title")}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _require_all(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node["required"] = list(node["properties"])
            node.setdefault("additionalProperties", False)
        for v in node.values():
            _require_all(v)
    elif isinstance(node, list):
        for v in node:
            _require_all(v)


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Self-contained JSON Schema of `model` (no `$ref`), every property required."""
    raw = model.model_json_schema(mode="validation")
    schema = _inline(raw, raw.get("$defs", {}))
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)
    _require_all(schema)
    return schema


def response_format(model: type[BaseModel], name: str | None = None) -> dict[str, Any]:
    """OpenAI-compatible `response_format` for servers that support JSON Schema (vLLM, SGLang, LMDeploy)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": name or model.__name__, "schema": json_schema(model), "strict": True},
    }

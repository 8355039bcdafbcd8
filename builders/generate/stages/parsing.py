"""Turn model text into validated objects, or say precisely why not."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class ParseError(ValueError):
    """A reply that cannot become a valid stage output; `reason` is a stable code for counting."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def extract_json(text: str) -> Any:
    """The JSON object in a reply: the whole text, a fenced block, or the outermost {...} span.

    Constrained decoding returns bare JSON; unconstrained backends often wrap it in prose or fences.
    Raw control characters (a tab, a newline, 0x1a) inside a string are read as the characters they
    are, as if escaped: JSON forbids them unescaped, yet a server's grammar may let a model write them
    (vLLM's default xgrammar does) and the reply is unambiguous. Everything else stays strict, and the
    caller validates the schema strictly.
    """
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    if start == -1:
        raise ParseError("no_json", "the reply contains no JSON object")
    last_error = ""
    for cand in candidates:
        try:
            return json.loads(cand, strict=False)  # strict=False: control characters in strings
        except json.JSONDecodeError as exc:
            last_error = str(exc)
    raise ParseError("invalid_json", last_error or "unparseable JSON")


def parse_model(text: str, model: type[M]) -> M:
    data = extract_json(text)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ParseError("schema_mismatch", f"{where}: {first['msg']} ({exc.error_count()} error(s))") from exc


def parse_free_text(text: str, finish_reason: str | None = None) -> str:
    """A free-text answer: stripped, non-empty."""
    cleaned = text.strip()
    if not cleaned:
        raise ParseError("empty_answer", "the model returned no text")
    return cleaned

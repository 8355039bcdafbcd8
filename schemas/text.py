"""Text rules shared by validation, curation and the builder (pure functions)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_WS = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_WORD = re.compile(r"\w+(?:['’]\w+)*")


def normalize_text(text: str) -> str:
    """Case-, width- and whitespace-insensitive form, used to decide that two answers are "the same".

    Two answers that differ only in case, spacing or trailing punctuation teach DPO nothing.
    """
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _WS.sub(" ", t).strip()
    return _EDGE_PUNCT.sub("", t)


def word_count(text: str) -> int:
    """Words as ISR-DPO counts them for its length-bias check: runs of word characters."""
    return len(_WORD.findall(text))


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


NonEmptyStr = Annotated[str, StringConstraints(min_length=1), AfterValidator(_not_blank)]

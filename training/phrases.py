"""Differing phrases of a pair, as RRPO needs them: aligned across the two answers, then as tokens.

Every row stores `diff_spans` (schemas/diff.py): the changed word runs of the rejected answer and of
the chosen one, with character offsets into their own text. RRPO compares phrase i of the chosen
answer with *the* phrase it replaced in the rejected one, so the spans are first paired up, then
each phrase is mapped onto the completion tokens the trainer scores. All functions here are pure.

Pairing rule. Between two changes the answers share an unchanged run of words, identical on both
sides (that is what the word diff matched). So a span's *slot* -- the number of unchanged words
before it on its own side (words that overlap no span of that side) -- is the same for a rejected
span and the chosen span that replaced it, and differs for changes separated by unchanged text.
Spans of the two sides with the same slot form one phrase pair; this reproduces difflib's
"replace" runs exactly (tests check it against the opcodes). A slot with spans on one side only is
a pure deletion (rejected side) or insertion (chosen side): its partner is the empty phrase, whose
log-ratio is 0, so the phrase still counts with its one side.

Token rule. A token belongs to a phrase when its character range overlaps one of the phrase's
spans (start < span end and span start < end), so a span that splits a token takes the whole token,
and every byte-level piece of a multi-byte character (they all carry that character's range) goes
with it. Tokens with an empty range (added markers) belong to no phrase. Offsets are those of the
tokenizer's `return_offsets_mapping` on the rendered completion (the answer plus the chat template's
end-of-turn text), shifted by where the answer sits in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from videosavi.errors import TrainingDataError

_WORD = re.compile(r"\S+")  # the word unit of schemas/diff.py

Range = tuple[int, int]


@dataclass(frozen=True)
class PhrasePair:
    """Character ranges of one differing phrase in each answer; an empty side is an insertion/deletion."""

    rejected: tuple[Range, ...]
    chosen: tuple[Range, ...]


def _span_fields(span: Any) -> tuple[str, int, int, str]:
    get: Callable[[str], Any] = span.get if isinstance(span, Mapping) else (lambda k: getattr(span, k))
    return str(get("side")), int(get("start")), int(get("end")), str(get("text"))


def check_row_spans(row: Mapping[str, Any]) -> None:
    """Refuse a row whose stored spans no longer cut its texts where they say (hand-edited data),
    naming the row: RRPO would otherwise reward the wrong words without any sign of it."""
    texts = {"rejected": row["rejected"], "chosen": row["chosen"]}
    for span in row.get("diff_spans") or []:
        side, start, end, text = _span_fields(span)
        if side not in texts or not isinstance(texts[side], str):
            raise TrainingDataError(f"pair {row.get('pair_id', '?')}: diff span side {side!r} is not 'rejected' "
                                    "or 'chosen' with a plain-text answer")
        own = texts[side]
        if not 0 <= start <= end <= len(own) or own[start:end] != text:
            raise TrainingDataError(
                f"pair {row.get('pair_id', '?')}: diff span {start}:{end} ({side}, {text!r}) does not match its "
                f"{side} text (it reads {own[start:end]!r}); was the row edited by hand? Re-derive the spans with "
                "videosavi.schemas.diff.diff_spans(rejected, chosen), or drop the row"
            )


def _slots(text: str, ranges: Sequence[Range]) -> list[int]:
    """For each range (in order), how many words of `text` before it overlap no range."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    free = [w for w in words if not any(w[0] < e and s < w[1] for s, e in ranges)]
    return [sum(1 for w in free if w[1] <= s) for s, _ in ranges]


def pair_phrases(rejected: str, chosen: str, spans: Sequence[Any]) -> list[PhrasePair]:
    """Aligned phrase pairs of a row, in order of appearance (see the module docstring)."""
    by_side: dict[str, list[Range]] = {"rejected": [], "chosen": []}
    for span in spans:
        side, start, end, _ = _span_fields(span)
        if end > start:
            by_side[side].append((start, end))
    slots: dict[int, dict[str, list[Range]]] = {}
    for side, text in (("rejected", rejected), ("chosen", chosen)):
        ranges = sorted(by_side[side])
        for slot, rng in zip(_slots(text, ranges), ranges, strict=True):
            slots.setdefault(slot, {"rejected": [], "chosen": []})[side].append(rng)
    return [PhrasePair(tuple(slots[k]["rejected"]), tuple(slots[k]["chosen"])) for k in sorted(slots)]


def locate_answer(rendered: str, answer: str) -> int:
    """Where the answer text starts inside its rendered completion (chat template around it)."""
    at = rendered.find(answer)
    if at < 0:
        raise ValueError("the chat template changes the answer text, so its phrase offsets cannot be placed")
    return at


def token_membership(offsets: Sequence[Sequence[int]], ranges: Sequence[Range], shift: int = 0) -> list[bool]:
    """Which tokens (by character range) overlap any of `ranges` shifted by `shift` characters."""
    out = []
    for a, b in offsets:
        out.append(b > a and any(a < e + shift and s + shift < b for s, e in ranges))
    return out

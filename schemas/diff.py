"""Phrase-level differences between the rejected and chosen answers (for RRPO-style losses)."""

from __future__ import annotations

import difflib
import re

_TOKEN = re.compile(r"\S+")


def diff_spans(rejected: str, chosen: str) -> list[dict]:
    """Word-level diff; each changed run becomes a span with char offsets into its own text.

    Returns dicts `{side, start, end, text}` with side "rejected" (removed/replaced words) or "chosen"
    (inserted/replacing words), in order of appearance.
    """
    a = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(rejected)]
    b = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(chosen)]
    matcher = difflib.SequenceMatcher(a=[t for *_, t in a], b=[t for *_, t in b], autojunk=False)
    spans: list[dict] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            s, e = a[i1][0], a[i2 - 1][1]
            spans.append({"side": "rejected", "start": s, "end": e, "text": rejected[s:e]})
        if j2 > j1:
            s, e = b[j1][0], b[j2 - 1][1]
            spans.append({"side": "chosen", "start": s, "end": e, "text": chosen[s:e]})
    return spans

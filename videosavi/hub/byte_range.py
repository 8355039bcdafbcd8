"""HTTP `Range` headers checked strictly before a file is served (pure).

Starlette's `FileResponse` serves byte ranges well (206, `Content-Range`, multipart for several
ranges, `If-Range`) but is lenient where the hub server must be strict: it answers a malformed
header with 400 and silently drops list items it cannot parse. Clients of the Hub (huggingface_hub's
`HfFileSystem`, fsspec, pyarrow) read a 416 as "nothing more to read" and a 4xx other than that as
a failure, so a header that names no valid byte range is answered 416 with the file's size here,
and only headers that are entirely well-formed reach `FileResponse`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 9110 14.1.1: a range spec is `first-last`, `first-` or `-suffix_length`; a header may list several.
_SPEC = re.compile(r"^\s*(?:(\d+)-(\d*)|-(\d+))\s*$")


@dataclass(frozen=True)
class RangeDecision:
    """`satisfiable` False means answer 416 with `Content-Range: bytes */size`."""

    satisfiable: bool
    ranges: tuple[tuple[int, int], ...] = ()  # half-open [start, end) byte offsets, as requested

    def header(self) -> str:
        """The same ranges as a canonical `Range` value (what FileResponse is handed)."""
        return "bytes=" + ",".join(f"{s}-{e - 1}" for s, e in self.ranges)


def unsatisfied_content_range(size: int) -> str:
    return f"bytes */{size}"


def check_range(header: str, size: int) -> RangeDecision:
    """Decide a `Range` header against a file of `size` bytes.

    Satisfiable when the unit is `bytes` and every listed spec is well-formed (first <= last) and
    overlaps the file. Anything else is unsatisfiable, a malformed header included, so a client never
    gets a 400 or the whole file for a range request. (RFC 9110 would let a list with some satisfiable
    items through; the Hub's clients never send lists, and FileResponse refuses such a list too.)
    """
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or not specs.strip():
        return RangeDecision(False)
    ranges: list[tuple[int, int]] = []
    for spec in specs.split(","):
        m = _SPEC.match(spec)
        if m is None:
            return RangeDecision(False)
        first, last, suffix = m.groups()
        if suffix is not None:
            length = int(suffix)  # a zero-length suffix selects nothing: unsatisfiable below
            ranges.append((max(size - length, 0) if length else size, size))
            continue
        start = int(first)
        if last and int(last) < start:
            return RangeDecision(False)
        end = min(int(last) + 1, size) if last else size
        ranges.append((start, end))
    if any(not (0 <= s < e <= size) for s, e in ranges):
        # One unsatisfiable item refuses the whole list (FileResponse would answer 416 for it too).
        return RangeDecision(False)
    return RangeDecision(True, tuple(ranges))

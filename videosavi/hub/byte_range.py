"""HTTP `Range` headers decided by RFC 9110's rules before a file is served (pure).

Starlette's `FileResponse` serves byte ranges well (206, `Content-Range`, multipart for several
ranges, `If-Range`) but is lenient where the hub server must be exact, so the header is decided here
and `FileResponse` only ever sees a canonical list of satisfiable ranges:

- a unit other than `bytes` is ignored (RFC 9110 14.2: the whole file, 200);
- empty list elements are ignored (`bytes=0-3,` is `bytes=0-3`, RFC 9110 5.6.1);
- a list is served with its satisfiable ranges; only when none is satisfiable the answer is 416 with
  `Content-Range: bytes */size` (RFC 9110 14.1.2, 15.5.17);
- a last position past the end is cut at the end and a suffix longer than the file is the whole file;
- numbers of any length are read without Python's int-digit limit (a first position of 5,000 digits
  is past the end of any file: 416, never a 500);
- a `bytes` header that does not parse (`bytes=abc`, `bytes=9-3`) is 416 as well, rather than 200:
  the Hub's clients (huggingface_hub's `HfFileSystem`, fsspec, pyarrow) read a 416 as "nothing more
  to read" and must never receive a whole multi-GB file for a request they meant as a range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# RFC 9110 14.1.1: a range spec is `first-last`, `first-` or `-suffix_length`.
_SPEC = re.compile(r"^[ \t]*(?:(\d+)-(\d*)|-(\d+))[ \t]*$")
_HUGE = 1 << 62  # larger than any file; stands in for numbers too long to need their exact value
_MAX_DIGITS = 18
MAX_RANGES = 100  # more ranges than this in one request is refused (416), as servers commonly do

Outcome = Literal["ignore", "partial", "unsatisfiable"]


@dataclass(frozen=True)
class RangeDecision:
    """`ignore`: serve the whole file (200); `partial`: serve `ranges` (206); `unsatisfiable`: 416."""

    outcome: Outcome
    ranges: tuple[tuple[int, int], ...] = ()  # half-open [start, end) byte offsets, all within the file

    @property
    def satisfiable(self) -> bool:
        return self.outcome == "partial"

    def header(self) -> str:
        """The ranges as a canonical `Range` value (what FileResponse is handed)."""
        return "bytes=" + ",".join(f"{s}-{e - 1}" for s, e in self.ranges)


def unsatisfied_content_range(size: int) -> str:
    return f"bytes */{size}"


def _number(digits: str) -> int:
    """The value of a digit string, capped at `_HUGE` before Python would refuse to parse it."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def check_range(header: str, size: int) -> RangeDecision:
    """Decide a `Range` header against a file of `size` bytes (see the module docstring)."""
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return RangeDecision("ignore")
    items = [item for item in specs.split(",") if item.strip()]
    if not items or len(items) > MAX_RANGES:
        return RangeDecision("unsatisfiable")
    ranges: list[tuple[int, int]] = []
    for item in items:
        m = _SPEC.match(item)
        if m is None:
            return RangeDecision("unsatisfiable")
        first, last, suffix = m.groups()
        if suffix is not None:
            length = _number(suffix)
            if length > 0 and size > 0:
                ranges.append((max(size - length, 0), size))
            continue
        start = _number(first)
        if last and _number(last) < start:
            return RangeDecision("unsatisfiable")  # first > last: the header is invalid
        if start < size:
            ranges.append((start, min(_number(last) + 1, size) if last else size))
    return RangeDecision("partial", tuple(ranges)) if ranges else RangeDecision("unsatisfiable")

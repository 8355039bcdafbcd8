"""Reading what raters typed: yes/no and verdicts in the spellings people and spreadsheets use, and A/B."""

from __future__ import annotations

from typing import Literal

Verdict = Literal["accurate", "clear_errors", "neither"]
VERDICTS: dict[str, Verdict] = {
    "accurate": "accurate", "correct": "accurate",
    "clear errors": "clear_errors", "clear error": "clear_errors", "errors": "clear_errors", "error": "clear_errors",
    "wrong": "clear_errors",
    "neither": "neither", "unclear": "neither", "partly": "neither",
}
YES: frozenset[str] = frozenset({"yes", "y", "1", "true"})
NO: frozenset[str] = frozenset({"no", "n", "0", "false"})


class InvalidJudgement(ValueError):
    """A cell that is neither blank nor one of the accepted spellings."""


def is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def parse_yes_no(value: str) -> bool:
    """yes/no, y/n, 1/0, true/false, case-insensitive; anything else raises `InvalidJudgement`."""
    v = value.strip().casefold()
    if v in YES:
        return True
    if v in NO:
        return False
    raise InvalidJudgement(f"expected yes/no (or y/n, 1/0, true/false), got {value!r}")


def parse_a_b(value: str) -> str:
    """'A' or 'B', case-insensitive; anything else raises `InvalidJudgement`."""
    v = value.strip().upper()
    if v in ("A", "B"):
        return v
    raise InvalidJudgement(f"expected A or B, got {value!r}")


def parse_verdict(value: str) -> Verdict:
    """accurate (or correct), clear errors (errors, wrong), neither (unclear, partly); case, `_` and `-`
    are ignored. Anything else raises `InvalidJudgement`."""
    v = " ".join(value.strip().casefold().replace("_", " ").replace("-", " ").split())
    if v in VERDICTS:
        return VERDICTS[v]
    raise InvalidJudgement(f"expected accurate, clear errors or neither, got {value!r}")

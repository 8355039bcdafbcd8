"""The functions of a local video multiple-choice task in LMMs-Eval's own task format.

This file is copied, as `utils.py`, into every task folder `write_mc_task` writes; LMMs-Eval imports it
from there (`!function utils.NAME` in the task YAML) inside its own venv, so it needs nothing but the
standard library. A row of the task's `data.jsonl` holds `id`, `video` (an absolute path), `question`,
`options` (the choices, in letter order) and `answer` (the right letter).
"""

from __future__ import annotations

import re
from typing import Any

LETTERS = "ABCDEFGH"
# "B", "B.", "(B)", "B) blue", "Answer: B", "The answer is B": the first standalone option letter.
_LETTER = re.compile(r"(?<![A-Za-z])([A-H])(?![A-Za-z])")


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    return [doc["video"]]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(doc["options"]))
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\n{options}\n{kwargs.get('post_prompt', '')}"


def parse_letter(response: str, n_options: int) -> str | None:
    """The option letter a reply picks, or None; letters beyond the options do not count."""
    allowed = LETTERS[:n_options]
    for match in _LETTER.finditer(response.strip()):
        if match.group(1) in allowed:
            return match.group(1)
    return None


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    picked = parse_letter(results[0] if results else "", len(doc["options"]))
    return {"accuracy": 1.0 if picked == doc["answer"] else 0.0}

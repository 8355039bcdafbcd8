"""Pure yes/no tests on texts, shared by the build runner (before a pair exists) and the filters.

Everything compares texts through `videosavi.schemas.text.normalize_text`, the one normaliser of
the project, so "the same answer" means the same thing in validation, curation and statistics.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from videosavi.curation_config import DEFAULT_NO_ISSUE_PHRASES
from videosavi.schemas.text import normalize_text, word_count

_WORD = re.compile(r"\w+(?:'\w+)*")
# Curly apostrophes are common in model output; NFKC keeps them, so fold them for phrase matching.
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
# A text ending in one of these was stopped mid-sentence (used only when the finish reason is unknown).
_DANGLING_CHARS = (",", ":", ";", "(", "-", "–", "—", "/", "&")
_DANGLING_WORDS = frozenset(
    "a an the and or but of to in on at with from by for as than that which while then because is are was were"
    .split()
)
# Words that add nothing when an answer repeats a question: function words and vague fillers.
_FILLER = frozenset(
    """a an the is are was were be been being am do does did doing done has have had having it its it's
    this that these those there here they them their he him his she her hers i me my we us our you your
    of in on at to into onto by with from for as and or but so then also very just some any
    video clip footage scene frame frames shown show shows seen see visible appears appear
    something someone somebody somewhere thing things stuff what which who whom whose where when
    why how""".split()
)


def _canon(text: str) -> str:
    return normalize_text(text).translate(_APOSTROPHES)


def text_words(text: str) -> list[str]:
    """Normalised words (apostrophes folded), the unit of question similarity and restatement."""
    return _WORD.findall(_canon(text))


def same_answer(a: str, b: str) -> bool:
    """True if two answers differ only in case, width, spacing or edge punctuation."""
    return normalize_text(a) == normalize_text(b)


def critique_has_issue(critique: Any, no_issue_phrases: Iterable[str] = DEFAULT_NO_ISSUE_PHRASES) -> bool:
    """True if the critique (a `Critique`, a `PreferencePair`, or a list of issues) names a real issue.

    An issue whose statement is only a placeholder such as "none" or "no issues" does not count:
    constrained decoding forces the critic to emit well-formed issues, not meaningful ones.
    """
    issues = critique if isinstance(critique, list | tuple) else getattr(critique, "issues", None)
    if not issues:
        return False
    placeholders = {_canon(p) for p in no_issue_phrases}
    for issue in issues:
        statement = issue.get("statement", "") if isinstance(issue, dict) else getattr(issue, "statement", "")
        if _canon(statement) not in placeholders:
            return True
    return False


def is_truncated(text: str, finish_reason: str | None) -> bool:
    """True if an answer was cut off.

    The backend's finish reason decides when it is known ("length" = cut by the token limit); only
    when it is unknown (None, e.g. rows from elsewhere) does a text that ends on a dangling comma or
    connective ("... and") count as cut off.
    """
    if finish_reason is not None:
        return finish_reason == "length"
    stripped = text.rstrip()
    if not stripped:
        return False
    if stripped.endswith(_DANGLING_CHARS):
        return True
    words = text_words(stripped)
    return bool(words) and words[-1] in _DANGLING_WORDS and stripped[-1].isalnum()


def is_empty(text: str, min_words: int = 1) -> bool:
    """True if the answer has fewer than `min_words` (at least 1) words; punctuation-only has none."""
    return word_count(text) < max(min_words, 1)


@functools.lru_cache(maxsize=16)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    canon = sorted({_canon(p) for p in phrases if _canon(p)}, key=len, reverse=True)
    if not canon:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in canon) + r")(?!\w)")


def is_refusal(text: str, phrases: Iterable[str]) -> bool:
    """True if the answer contains one of the refusal phrases as whole words (case-insensitive)."""
    pattern = _phrase_pattern(tuple(phrases))
    return bool(pattern and pattern.search(_canon(text)))


def content_words(text: str) -> set[str]:
    """Words that carry content: all words minus function words and vague fillers."""
    return {w for w in text_words(text) if w not in _FILLER}


def restates_question(answer: str, question: str, max_new_words: int = 0) -> bool:
    """True if the answer adds at most `max_new_words` content words to what the question says.

    A choice question ("... left or right ...?") is answered by repeating one of its options, so it
    is exempt; a yes/no answer adds "yes" or "no" and so is never a restatement.
    """
    q_words = text_words(question)
    if "or" in q_words or not text_words(answer):  # an empty answer is the empty filter's business
        return False
    new = content_words(answer) - set(q_words)
    return len(new) <= max_new_words


def length_ratio(chosen_words: int, rejected_words: int) -> float | None:
    """chosen/rejected word ratio; None when the rejected answer has no words (ratio undefined)."""
    return chosen_words / rejected_words if rejected_words else None

"""The row of a published revision's `default` config: the record in TRL's conversational preference form.

TRL's own data preparation (`maybe_extract_prompt`, then `maybe_apply_chat_template`, which
`DPOTrainer` runs on every dataset) keeps a row's `prompt` only when `prompt` and `chosen` are the
same kind: both chat messages or both strings. Otherwise it rebuilds the prompt from the common start
of `chosen` and `rejected`, which for two answers is empty, and trains on nothing, without a word.
So the published record holds `prompt`, `chosen` and `rejected` as messages (the prompt a0 was
generated from; each answer as one assistant turn), and the same answers as plain text under
`chosen_text` / `rejected_text` for the readers that want strings (statistics, human evaluation, the
character offsets of `diff_spans`).

Everything else is `PreferencePair`, field for field and in its order: this model is derived from it
(never written by hand), so a field added to the record reaches the published row and its Arrow
schema by itself. A build writes `PreferencePair` rows; publishing turns them into these
(`videosavi.formats.published_rows`), and readers turn them back (`record_columns`).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from videosavi.schemas.messages import ChatMessage
from videosavi.schemas.pair import PreferencePair

# conversational column -> the column holding the same answer as plain text
TEXT_COLUMNS = {"chosen": "chosen_text", "rejected": "rejected_text"}

_DESCRIPTIONS = {
    "prompt": "the exact chat messages a0 was generated from (one user turn: a video block, then the answer "
              "template rendered for the question), in TRL's conversational form",
    "chosen": "the answer refined after self-critique a1 (preferred), as one assistant turn (TRL's "
              "conversational preference form; the text is `chosen_text`)",
    "rejected": "the initial answer a0 (dispreferred), as one assistant turn (the text is `rejected_text`)",
    "chosen_text": "the refined answer a1 as plain text (what `diff_spans` offsets index)",
    "rejected_text": "the initial answer a0 as plain text",
}


def _fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in PreferencePair.model_fields.items():
        if name == "prompt":
            fields[name] = (list[ChatMessage], Field(min_length=1, description=_DESCRIPTIONS[name]))
        elif name in TEXT_COLUMNS:
            fields[name] = (list[ChatMessage], Field(min_length=1, max_length=1, description=_DESCRIPTIONS[name]))
            text = TEXT_COLUMNS[name]
            text_info = copy.copy(info)  # the record's constraints (non-empty text), its own description
            text_info.description = _DESCRIPTIONS[text]
            fields[text] = (info.annotation, text_info)
        else:
            fields[name] = (info.annotation, info)
    return fields


PublishedPair: type[BaseModel] = create_model(
    "PublishedPair",
    __config__=ConfigDict(extra="forbid", frozen=True),
    __doc__="One preference pair as the `default` config publishes it (see the module docstring).",
    **_fields(),
)

__all__ = ["TEXT_COLUMNS", "PublishedPair"]

"""The DPO prompt of each row: the messages its rejected answer a0 was generated from.

Rows built since builder g3 store them (`prompt`); older rows are rendered from the run's answer
template (`prompts/answer.txt`, the bundled one when absent) and their question, as the builder's
`answer_messages` did. Every derived format (the `swift` and `trl` configs, `savi export`) takes its
prompt from here, so no reader can train on a different prompt than `savi train`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.schemas.messages import ChatMessage, prompt_text

PROMPT_INPUT_COLUMNS = ("question", "frame_indices")


def _prompt_set(answer_template: str | None) -> PromptSet:
    return PromptSet({"answer": answer_template}) if answer_template is not None else PromptSet.load()


def clean_messages(messages: list[Any]) -> list[dict]:
    """Messages as the schema holds them, without the `None` keys a parquet round trip adds."""
    return [ChatMessage.model_validate(m).model_dump(exclude_none=True) for m in messages]


def row_prompts(pairs: pa.Table, answer_template: str | None = None) -> list[list[dict]]:
    """Each row's prompt messages, in row order (pure)."""
    stored = pairs.column("prompt").to_pylist() if "prompt" in pairs.column_names else [None] * pairs.num_rows
    cols = pairs.select(list(PROMPT_INPUT_COLUMNS)).to_pydict()
    prompts = _prompt_set(answer_template)
    return [
        clean_messages(given) if given is not None else answer_messages(prompts, question, len(frames))
        for given, question, frames in zip(stored, cols["question"], cols["frame_indices"], strict=True)
    ]


def prompt_texts(pairs: pa.Table, answer_template: str | None = None) -> list[str]:
    """The text of each row's prompt (the user turn without its video block): the rendered answer template."""
    return [prompt_text([ChatMessage.model_validate(m) for m in messages])
            for messages in row_prompts(pairs, answer_template)]

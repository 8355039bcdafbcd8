"""The same pairs in ms-swift's DPO format (the card's `swift` config).

ms-swift's standard rows are `messages` (the conversation, the preferred answer as the last
assistant turn), `rejected_response` (the dispreferred answer) and `videos` (paths; one `<video>`
tag in the user turn per entry). Paths are `<source>/<video_path>`, relative, so a user points them
at local copies by prefixing a root per source. ms-swift has no clip fields: rows of trimmed clips
(STAR) refer to the whole file there, which the card states.

The row layout is a pydantic model like every other record, so its Arrow schema and the card's
`dataset_info` are derived, not written by hand.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from videosavi.formats.dpo_prompt import prompt_texts
from videosavi.schemas.arrow import arrow_schema

VIDEO_TAG = "<video>"


class SwiftMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class SwiftDpoRow(BaseModel):
    """One ms-swift DPO row: the chosen answer is the last message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[SwiftMessage] = Field(
        description="user turn '<video>' + the prompt a0 was generated with (the question), then the chosen "
        "(refined) answer as the last assistant turn"
    )
    rejected_response: str = Field(description="the rejected (initial) answer")
    videos: list[str] = Field(description="'<source>/<video_path>', relative to your local video roots")


def video_ref(source: str, video_path: str) -> str:
    """Relative path of a row's video under a per-source layout: `<source>/<video_path>`."""
    return f"{source}/{video_path}"


def swift_rows(pairs: pa.Table, answer_template: str | None = None) -> pa.Table:
    """PreferencePair rows -> SwiftDpoRow rows, in the same order (pure).

    The user turn is the prompt a0 was generated with: the row's stored `prompt` (its text), else the
    run's answer template rendered for the row (the bundled one is the bare question), so ms-swift
    trains on the same prompt as `savi train`.
    """
    texts = prompt_texts(pairs, answer_template)
    cols = pairs.select(["chosen", "rejected", "source", "video_path"]).to_pydict()
    rows = [
        {
            "messages": [
                {"role": "user", "content": VIDEO_TAG + text},
                {"role": "assistant", "content": chosen},
            ],
            "rejected_response": rejected,
            "videos": [video_ref(source, path)],
        }
        for text, chosen, rejected, source, path in zip(
            texts, cols["chosen"], cols["rejected"], cols["source"], cols["video_path"], strict=True,
        )
    ]
    return pa.Table.from_pylist(rows, schema=arrow_schema(SwiftDpoRow))

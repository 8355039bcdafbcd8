"""The same pairs in TRL's conversational preference format (the card's `trl` config).

TRL pairs a conversational prompt only with conversational completions: `maybe_extract_prompt`
keeps a row's `prompt` only when `prompt` and `chosen` are both message lists (or both strings), and
otherwise rebuilds the prompt from the common prefix of `chosen` and `rejected`: for our answers
that prefix is empty or a stray word. `DPOTrainer`'s dataset preparation then concatenates
`prompt + chosen` as lists. The record's `chosen`/`rejected` stay plain text for every other reader
(statistics, curation, the card, human evaluation, the `swift` config), so the TRL form is a config
of its own: `prompt` (the messages a0 was generated from), `chosen` and `rejected` as one assistant
turn each, plus what a video collator needs to find the frames (`source`, `video_path`,
`video_sha256`, `clip_start`/`clip_end`, `frame_indices`) and `pair_id` to join back to the record.

The row layout is a pydantic model, so its Arrow schema and the card's `dataset_info` are derived.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from videosavi.formats.dpo_prompt import row_prompts
from videosavi.schemas.arrow import arrow_schema
from videosavi.schemas.messages import ChatMessage, assistant_message

COPIED_COLUMNS = ("pair_id", "source", "video_path", "video_sha256", "clip_start", "clip_end", "frame_indices")


class TrlDpoRow(BaseModel):
    """One TRL preference row in the conversational format, with its video reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair_id: str = Field(description="the pair's id in the default config")
    prompt: list[ChatMessage] = Field(
        description="the messages a0 was generated from: one user turn, a video block then the rendered answer "
        "template (the question)"
    )
    chosen: list[ChatMessage] = Field(description="the refined answer a1 as one assistant turn")
    rejected: list[ChatMessage] = Field(description="the initial answer a0 as one assistant turn")
    source: str = Field(description="source name; map it to your local root")
    video_path: str = Field(description="POSIX path relative to the source's root")
    video_sha256: str = Field(description="sha256 of the video file the frames came from")
    clip_start: float | None = Field(default=None, description="clip start in seconds (STAR)")
    clip_end: float | None = Field(default=None, description="clip end in seconds")
    frame_indices: list[int] = Field(description="the frames the model saw (indices into the file)")


def trl_rows(pairs: pa.Table, answer_template: str | None = None) -> pa.Table:
    """PreferencePair rows -> TrlDpoRow rows, in the same order (pure)."""
    prompts = row_prompts(pairs, answer_template)
    cols = pairs.select([*COPIED_COLUMNS, "chosen", "rejected"]).to_pydict()
    rows = [
        {
            **{name: cols[name][i] for name in COPIED_COLUMNS},
            "prompt": prompt,
            "chosen": [assistant_message(cols["chosen"][i]).model_dump()],
            "rejected": [assistant_message(cols["rejected"][i]).model_dump()],
        }
        for i, prompt in enumerate(prompts)
    ]
    return pa.Table.from_pylist(rows, schema=arrow_schema(TrlDpoRow))

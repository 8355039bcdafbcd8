"""ms-swift's DPO rows, written in one place: the card's `swift` config and `savi export --format swift`.

ms-swift's standard rows (its docs: Customization/Custom-dataset.md, "RLHF" and "Multimodal") are
`messages` (the conversation, the preferred answer as the last assistant turn), `rejected_response`
(the dispreferred answer) and the media: `videos` and/or `images` (paths), one `<video>` / `<image>`
tag in the user turn per entry. ms-swift reads a video file with its model's own frame sampler;
frames already sampled go in as images, one tag each.

`swift_record` writes one row; its two users differ only in the media they name. The published
`swift` config (`swift_rows`) points at `<source>/<video_path>`, relative, so a user points them at
local copies by prefixing a root per source; ms-swift has no clip fields, so rows of trimmed clips
(STAR) refer to the whole file there, which the card states. `savi export` passes absolute paths of
checked files, cut clips or frame images. The published layout is a pydantic model like every other
record, so its Arrow schema and the card's `dataset_info` are derived, not written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from videosavi.formats.dpo_prompt import prompt_texts
from videosavi.schemas.arrow import arrow_schema

VIDEO_TAG = "<video>"
IMAGE_TAG = "<image>"


class SwiftMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class SwiftDpoRow(BaseModel):
    """One ms-swift DPO row of the published `swift` config: the chosen answer is the last message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: list[SwiftMessage] = Field(
        description="user turn '<video>' + the prompt a0 was generated with (the question), then the chosen "
        "(refined) answer as the last assistant turn"
    )
    rejected_response: str = Field(description="the rejected (initial) answer")
    videos: list[str] = Field(description="'<source>/<video_path>', relative to your local video roots")


def swift_record(prompt: str, chosen: str, rejected: str, *, videos: Sequence[str] = (),
                 images: Sequence[str] = ()) -> dict[str, Any]:
    """One ms-swift DPO row: a tag per medium before the prompt in the user turn, the chosen answer as the
    last assistant turn; `videos` / `images` appear only when given."""
    user = VIDEO_TAG * len(videos) + IMAGE_TAG * len(images) + prompt
    row: dict[str, Any] = {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": chosen}],
        "rejected_response": rejected,
    }
    if videos:
        row["videos"] = list(videos)
    if images:
        row["images"] = list(images)
    return row


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
        swift_record(text, chosen, rejected, videos=[video_ref(source, path)])
        for text, chosen, rejected, source, path in zip(
            texts, cols["chosen"], cols["rejected"], cols["source"], cols["video_path"], strict=True,
        )
    ]
    return pa.Table.from_pylist(rows, schema=arrow_schema(SwiftDpoRow))

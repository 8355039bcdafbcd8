"""Chat messages as stored in parquet: the conversational form TRL and chat templates read.

A message is `{"role": ..., "content": [blocks]}`; a block is `{"type": "video"}` (where the frames
go) or `{"type": "text", "text": ...}`. Content is always a list of blocks, never a bare string, so
one Arrow type holds every message (a column cannot be a string in one row and a list in another).
A parquet round trip gives every block every key, so a video block comes back with `text: None`;
`prompt_text` and the chat-template helpers in training accept that.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ContentBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["video", "text"] = Field(description="video: the frames go here; text: the text below")
    text: str | None = Field(default=None, description="the text of a text block; null for a video block")

    @model_validator(mode="after")
    def _text_iff_text_block(self) -> ContentBlock:
        if (self.type == "text") != (self.text is not None):
            raise ValueError("a text block needs `text`; a video block has none")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: list[ContentBlock] = Field(min_length=1)


def video_blocks(messages: list[ChatMessage]) -> int:
    return sum(1 for m in messages for b in m.content if b.type == "video")


def prompt_text(messages: list[ChatMessage]) -> str:
    """The text of the last user turn (what the model was asked, without the frames)."""
    user = [m for m in messages if m.role == "user"]
    if not user:
        raise ValueError("the prompt has no user turn")
    return "".join(b.text or "" for b in user[-1].content if b.type == "text")


def assistant_message(text: str) -> ChatMessage:
    """One answer as TRL's conversational completions hold it."""
    return ChatMessage(role="assistant", content=[ContentBlock(type="text", text=text)])

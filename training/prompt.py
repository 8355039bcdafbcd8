"""The user turn DPO trains on: the same answer-stage message the builder sent when it made a0.

DPO compares log-probabilities of a1 and a0 given the prompt, so the prompt must be the one a0 was
sampled under. The builder's `answer_messages` renders it; the template comes from the revision
(`prompts/answer.txt`) when it has one, else from the bundled templates. A row that already carries
that prompt as conversational messages (a `prompt` column) is used as it is, after `chat_messages`
undoes what a parquet round trip does to them (content blocks become structs with `None` fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard


def _prompt_set(answer_template: str | None) -> Any:
    from videosavi.builders.generate.prompts import PromptSet

    if answer_template is None:
        return PromptSet.load()
    return PromptSet({"answer": answer_template})


def training_prompt(question: str, num_frames: int, answer_template: str | None = None) -> list[dict]:
    """Chat messages of the answer stage for `question`, with one `{"type": "video"}` block."""
    from videosavi.builders.generate.stages.answer import answer_messages

    return answer_messages(_prompt_set(answer_template), question, num_frames)


def frames_as_images(messages: list[dict], num_frames: int) -> list[dict]:
    """Replace each video block by one image block per frame, for processors without video support."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            blocks: list[dict] = []
            for block in content:
                if block.get("type") == "video":
                    blocks.extend({"type": "image"} for _ in range(num_frames))
                else:
                    blocks.append(block)
            message = {**message, "content": blocks}
        out.append(message)
    return out


def assistant_turn(text: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def is_conversation(value: Any) -> TypeGuard[list[Mapping[str, Any]]]:
    """A list of `{"role": ..., "content": ...}` messages (TRL's conversational format)."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value))


def chat_messages(messages: list[Mapping[str, Any]], *, needs_video: bool = False) -> list[dict]:
    """Messages as a chat template expects them: `None` fields of content blocks dropped (a parquet
    round trip gives every block every key) and, with `needs_video`, one `{"type": "video"}` block
    at the start of the first user turn when no turn has one, so the frames have a place."""
    out: list[dict] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{k: v for k, v in dict(block).items() if v is not None} for block in content]
        out.append({**{k: v for k, v in dict(message).items() if v is not None}, "content": content})
    has_video = any(isinstance(m["content"], list) and any(b.get("type") == "video" for b in m["content"])
                    for m in out)
    if needs_video and not has_video:
        for i, message in enumerate(out):
            if message["role"] == "user":
                content = message["content"]
                blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
                out[i] = {**message, "content": [{"type": "video"}, *blocks]}
                break
    return out

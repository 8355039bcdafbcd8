"""The user turn DPO trains on: the same answer-stage message the builder sent when it made a0.

DPO compares log-probabilities of a1 and a0 given the prompt, so the prompt must be the one a0 was
sampled under. The builder's `answer_messages` renders it; the template comes from the revision
(`prompts/answer.txt`) when it has one, else from the bundled templates.
"""

from __future__ import annotations

from typing import Any


def _prompt_set(answer_template: str | None) -> Any:
    from videosavi.builders.prompts import PromptSet

    if answer_template is None:
        return PromptSet.load()
    return PromptSet({"answer": answer_template})


def training_prompt(question: str, num_frames: int, answer_template: str | None = None) -> list[dict]:
    """Chat messages of the answer stage for `question`, with one `{"type": "video"}` block."""
    from videosavi.builders.stages.answer import answer_messages

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

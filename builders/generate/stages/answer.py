"""Stage 2: the initial answer a0 (the rejected side of a pair). Training reuses these messages."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.messages import video_user_message
from videosavi.builders.generate.stages.parsing import parse_free_text


def answer_messages(prompts: PromptSet, question: str, num_frames: int) -> list[dict]:
    """The user turn that asks the question; DPO trains on exactly this prompt."""
    return video_user_message(prompts.render("answer", question=question, num_frames=num_frames))


parse_answer = parse_free_text

"""Stage 0 of a retrospective build (ISR-DPO): the model describes the video, given its own earlier
description of it when the previous iteration made one; the critic later reads the result."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.messages import video_user_message
from videosavi.builders.generate.stages.parsing import parse_free_text


def describe_messages(prompts: PromptSet, num_frames: int, previous: str | None = None) -> list[dict]:
    """The describe prompt; with `previous` (iteration t-1's description of this video) the block that
    asks the model to revise it follows the instructions."""
    text = prompts.render("describe", num_frames=num_frames)
    if previous:
        text += "\n\n" + prompts.render("describe_previous", description=previous)
    return video_user_message(text)


def description_block(prompts: PromptSet, description: str) -> str:
    """The text that puts the video's description before the critique instructions."""
    return prompts.render("critique_context", description=description)


parse_description = parse_free_text

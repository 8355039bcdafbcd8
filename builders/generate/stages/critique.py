"""Stage 3: the model critiques its own answer, listing severity-labelled issues."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.describe import description_block
from videosavi.builders.generate.stages.messages import video_user_message
from videosavi.builders.generate.stages.parsing import parse_model
from videosavi.schemas import Critique
from videosavi.schemas.json_schema import json_schema


def critique_schema() -> dict:
    return json_schema(Critique)


def critique_messages(prompts: PromptSet, question: str, answer: str, num_frames: int,
                      description: str | None = None) -> list[dict]:
    """The critique prompt; a retrospective build puts the model's own description of the video first."""
    text = prompts.render("critique", question=question, answer=answer, num_frames=num_frames)
    if description is not None:
        text = description_block(prompts, description) + "\n\n" + text
    return video_user_message(text)


def parse_critique(text: str) -> Critique:
    return parse_model(text, Critique)

"""Stage 1: the model asks itself spatial and temporal questions about the video."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.messages import video_user_message
from videosavi.builders.generate.stages.parsing import ParseError, parse_model
from videosavi.schemas import Question, question_set_model
from videosavi.schemas.json_schema import json_schema


def question_schema(n_spatial: int, n_temporal: int) -> dict:
    return json_schema(question_set_model(n_spatial, n_temporal))


def question_messages(prompts: PromptSet, num_frames: int, n_spatial: int, n_temporal: int) -> list[dict]:
    text = prompts.render("question", num_frames=num_frames, n_spatial=n_spatial, n_temporal=n_temporal)
    return video_user_message(text)


def parse_questions(text: str, n_spatial: int, n_temporal: int) -> list[Question]:
    """Validated questions, spatial first. Raises ParseError when the reply is malformed."""
    parsed = parse_model(text, question_set_model(n_spatial, n_temporal))
    questions = [Question(question_type="spatial", question=q) for q in parsed.spatial]
    questions += [Question(question_type="temporal", question=q) for q in parsed.temporal]
    if not questions:
        raise ParseError("no_questions", "the reply holds no question")
    return questions

"""Questions the model asks itself about a video."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from videosavi.schemas.enums import QuestionType
from videosavi.schemas.limits import QUESTION_MAX_CHARS
from videosavi.schemas.text import NonEmptyStr

QuestionText = Annotated[
    str, StringConstraints(min_length=8, max_length=QUESTION_MAX_CHARS, strip_whitespace=True)
]


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question_type: QuestionType
    question: NonEmptyStr


class QuestionSet(BaseModel):
    """What every question-stage model holds; `question_set_model` fixes the list sizes."""

    model_config = ConfigDict(extra="forbid")

    spatial: list[QuestionText]
    temporal: list[QuestionText]


def question_set_model(n_spatial: int = 3, n_temporal: int = 3) -> type[QuestionSet]:
    """The question stage's output model, with the per-type counts the config asks for.

    Built with `create_model` so the list sizes in the derived JSON Schema follow the config
    (the paper: 3 spatial + 3 temporal) instead of being written twice.
    """
    return create_model(
        f"QuestionSet_{n_spatial}s{n_temporal}t",
        __base__=QuestionSet,
        spatial=(list[QuestionText], Field(min_length=n_spatial, max_length=n_spatial)),
        temporal=(list[QuestionText], Field(min_length=n_temporal, max_length=n_temporal)),
    )

"""Stage 1: the model asks itself spatial and temporal questions about the video; each kept question
becomes an item of its own for the stages after it."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.base import Stage, StageOutcome, WorkItem, video_user_message
from videosavi.builders.generate.stages.parsing import ParseError, parse_model
from videosavi.curation import dedupe_questions
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


class QuestionStage(Stage):
    """One call per video (JSON: `questions.spatial` + `questions.temporal` questions); duplicates are
    dropped (curation), and retried while tries remain."""

    name = "question"
    fan_out = "video"
    templates = ("question",)

    @property
    def counts(self) -> tuple[int, int]:
        q = self.ctx.cfg.questions
        return q.spatial, q.temporal

    @property
    def schema(self) -> dict:
        return question_schema(*self.counts)

    def messages(self, item: WorkItem) -> list[dict]:
        return question_messages(self.ctx.prompts, item.num_frames, *self.counts)

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> tuple[list, list]:
        kept, dropped = dedupe_questions(parse_questions(text, *self.counts), self.ctx.curation)
        if dropped and not last_attempt:
            raise ParseError("duplicate_questions", f"{len(dropped)} duplicate question(s)")
        return kept, dropped

    def keep(self, item: WorkItem, outcome: StageOutcome) -> bool:
        kept, dropped = outcome.value
        for _q, reason in dropped:
            item.result.filtered[reason] += 1
        item.result.questions = len(kept)
        return True

    def expand(self, item: WorkItem) -> list[WorkItem]:
        return [item.for_question(i, q) for i, q in enumerate(item.value(self.name)[0])]

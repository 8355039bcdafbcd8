"""Stage 2: the initial answer a0 (the rejected side of a pair). Its messages are the pair's DPO prompt:
training and the derived row formats render exactly them."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.base import Stage, WorkItem, video_user_message
from videosavi.builders.generate.stages.parsing import parse_free_text


def answer_messages(prompts: PromptSet, question: str, num_frames: int) -> list[dict]:
    """The user turn that asks the question; DPO trains on exactly this prompt."""
    return video_user_message(prompts.render("answer", question=question, num_frames=num_frames))


parse_answer = parse_free_text


class AnswerStage(Stage):
    """One call per question, free text."""

    name = "answer"
    fan_out = "question"
    templates = ("answer",)

    def messages(self, item: WorkItem) -> list[dict]:
        return answer_messages(self.ctx.prompts, item.question_text, item.num_frames)

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> str:
        return parse_answer(text)

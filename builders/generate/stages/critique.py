"""Stage 3: the model critiques its own answer, listing severity-labelled issues (or another model does:
`stages.critique.model`, an external critic)."""

from __future__ import annotations

from typing import Any

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.base import Stage, StageOutcome, WorkItem, video_user_message
from videosavi.builders.generate.stages.describe import description_block
from videosavi.builders.generate.stages.parsing import parse_model
from videosavi.curation import critique_has_issue, reasons
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


class CritiqueStage(Stage):
    """One call per question (JSON: a `Critique`). Kept when it names an issue, or whatever it found when
    the curation keeps critiques that found nothing (`paper`: the pair stands if the refinement differs)."""

    name = "critique"
    fan_out = "question"
    templates = ("critique",)

    @property
    def schema(self) -> dict:
        return critique_schema()

    def messages(self, item: WorkItem) -> list[dict]:
        return critique_messages(self.ctx.prompts, item.question_text, item.value("answer"), item.num_frames,
                                 description=item.result.description)

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> Critique:
        return parse_critique(text)

    def keep(self, item: WorkItem, outcome: StageOutcome) -> bool:
        if self._names_issue(outcome.value):
            return True
        item.result.filtered[reasons.NO_ISSUE] += 1
        return False

    def _names_issue(self, critique: Any) -> bool:
        """Always when the curation keeps critiques that found nothing; otherwise only when it names a real
        issue (not an empty list, not only "none"-like placeholders)."""
        cur = self.ctx.curation
        return not cur.drop_no_issue or critique_has_issue(critique, cur.no_issue_phrases)

"""Stage 4: the refined answer a1 (the chosen side), written from the answer and its critique; the
last stage, so every item it keeps becomes a pair."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.base import Stage, StageOutcome, WorkItem, video_user_message
from videosavi.builders.generate.stages.parsing import parse_free_text
from videosavi.curation import is_truncated, reasons, same_answer
from videosavi.schemas import Critique


def format_issues(critique: Critique) -> str:
    """The critique's issues as a numbered list the model can act on."""
    lines = []
    for i, issue in enumerate(critique.issues, 1):
        lines.append(
            f"{i}. [{issue.severity}, {issue.error_type}] \"{issue.statement}\" - {issue.reason} "
            f"(video shows: {issue.evidence})"
        )
    return "\n".join(lines) or "(none)"


def refine_messages(prompts: PromptSet, question: str, answer: str, critique: Critique, num_frames: int) -> list[dict]:
    text = prompts.render(
        "refine",
        question=question,
        answer=answer,
        issues=format_issues(critique),
        summary=critique.summary,
        num_frames=num_frames,
    )
    return video_user_message(text)


parse_refined = parse_free_text


class RefineStage(Stage):
    """One call per question, free text; kept when it differs from a0 and neither was cut off."""

    name = "refine"
    fan_out = "question"
    templates = ("refine",)

    def messages(self, item: WorkItem) -> list[dict]:
        return refine_messages(self.ctx.prompts, item.question_text, item.value("answer"), item.value("critique"),
                               item.num_frames)

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> str:
        return parse_refined(text)

    def keep(self, item: WorkItem, outcome: StageOutcome) -> bool:
        a0, a1 = item.outputs["answer"], outcome
        if same_answer(a0.value, a1.value):
            item.result.filtered[reasons.SAME_ANSWER] += 1
            return False
        if self.ctx.curation.drop_truncated and (
            is_truncated(a0.value, a0.finish_reason) or is_truncated(a1.value, a1.finish_reason)
        ):
            item.result.filtered[reasons.TRUNCATED_ANSWER] += 1
            return False
        return True

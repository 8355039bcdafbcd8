"""Stage 4: the refined answer a1 (the chosen side), written from the answer and its critique."""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.messages import video_user_message
from videosavi.builders.generate.stages.parsing import parse_free_text
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

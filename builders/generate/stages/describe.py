"""Stage 0 of a retrospective build (`retrospective: true`, ISR-DPO): the model describes the video,
given its own earlier description of it when the previous iteration made one; the critic later reads
the result (`description_block`), and every pair of the video stores it.

A video whose description fails gets no questions (it is quarantined, or left pending, like one whose
question call fails). The previous iteration's descriptions come from builders/run/retrospective.py.
"""

from __future__ import annotations

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.base import Stage, StageOutcome, WorkItem, video_user_message
from videosavi.builders.generate.stages.parsing import parse_free_text
from videosavi.config import BuildConfig, SamplingParams


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


class DescribeStage(Stage):
    """One call per video, free text, before the questions."""

    name = "describe"
    fan_out = "video"
    # its prompt, the block that shows it the previous description, and the block that shows the critic its own
    templates = ("describe", "describe_previous", "critique_context")
    defaults = SamplingParams(temperature=0.2, max_new_tokens=512)
    optional = True

    @classmethod
    def enabled(cls, cfg: BuildConfig) -> bool:
        return cfg.retrospective

    def messages(self, item: WorkItem) -> list[dict]:
        previous = self.ctx.previous_descriptions.get(item.video.video.video_uid)
        return describe_messages(self.ctx.prompts, item.num_frames, previous)

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> str:
        return parse_description(text)

    def keep(self, item: WorkItem, outcome: StageOutcome) -> bool:
        item.result.description = outcome.value
        item.result.revised_previous = item.video.video.video_uid in self.ctx.previous_descriptions
        return True

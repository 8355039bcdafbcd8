"""A stage of the build as one object: what it asks (prompt template, messages), how it samples, what
shape the reply must have, how the reply is parsed, which results go on, and how it fans out.

The pipeline (builders/generate/video_pipeline.py) runs a list of stages over a window of videos; it knows no
stage by name. A stage runs once per video or once per question (`fan_out`); a stage that turns one
video into several questions says so with `expand`. The stages of a build are listed in
builders/generate/pair_stages.py: describe (retrospective builds only), question, answer, critique, refine.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from videosavi.builders.generate.stage_runner import Parser, StageOutcome

if TYPE_CHECKING:
    from videosavi.builders.generate.pipeline_items import DecodedVideo, VideoResult
    from videosavi.schemas import Question

FanOut = Literal["video", "question"]


@dataclass
class WorkItem:
    """What one model call is about: a video, or one question about it (`question` set), with the
    accepted outcome and the messages of every stage that ran on it so far."""

    video: DecodedVideo
    result: VideoResult  # the video's record: pairs, quarantine, counters
    slot: int = 0
    question: Question | None = None
    outputs: dict[str, StageOutcome] = field(default_factory=dict)
    messages: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def task_id(self) -> Hashable:
        return self.video.seq if self.question is None else (self.video.seq, self.slot)

    @property
    def num_frames(self) -> int:
        return len(self.video.decoded.sample.frame_indices)

    def value(self, stage: str) -> Any:
        """The parsed reply of an earlier stage."""
        return self.outputs[stage].value

    def for_question(self, slot: int, question: Question) -> WorkItem:
        """This video's item for one of its questions (it sees what the video-level stages produced)."""
        return WorkItem(self.video, self.result, slot, question, dict(self.outputs), dict(self.messages))


def keep_all(item: WorkItem, outcome: StageOutcome) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    name: str  # the prompt template it renders; also the stage in call keys, counts and quarantine
    fan_out: FanOut  # one call per video, or one per question
    params: dict[str, Any]  # sampling: temperature, top_p, max_new_tokens
    schema: dict | None  # the JSON schema replies are held to while decoding, or None for free text
    messages: Callable[[WorkItem], list[dict]]  # the chat messages of the call
    parse: Parser  # (text, finish_reason, last_attempt) -> value; raises ParseError
    # after a parsed reply: does the item go on? (a stage that says no records why in item.result)
    keep: Callable[[WorkItem, StageOutcome], bool] = keep_all
    # a video item -> the items the next stages run on (the question stage: one per question)
    expand: Callable[[WorkItem], list[WorkItem]] | None = None

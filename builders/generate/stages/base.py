"""What every stage is: the `Stage` base class, the `WorkItem` a call is about, and the `StageOutcome` of
its call.

A stage is one module under builders/generate/stages/ holding one `Stage` subclass: its prompt template
(`templates`: files under builders/generate/prompts/), its sampling defaults, its output schema, its
messages and parser, and what it keeps between stages; `stages/__init__.py` lists the build's stages in
order (one line each). The pipeline (builders/generate/video_pipeline.py) runs any list of them and
knows none by name: a stage runs once per video or once per question (`fan_out`), and a stage that turns
one video into several questions says so with `expand`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from videosavi.config import SamplingParams

if TYPE_CHECKING:
    from videosavi.builders.generate.pipeline_items import DecodedVideo, PipelineContext, VideoResult
    from videosavi.config import AnyModelConfig, BuildConfig
    from videosavi.schemas import Question

FanOut = Literal["video", "question"]
# parse(text, finish_reason, last_attempt) -> parsed value; raises ParseError
Parser = Callable[[str, str, bool], Any]


@dataclass
class StageOutcome:
    """One task's result after its tries: the parsed value, or why there is none (`reason`; `transient`
    for transport errors the next run retries)."""

    value: Any = None
    text: str = ""
    finish_reason: str = ""
    attempts: int = 0
    reason: str | None = None
    detail: str = ""
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.reason is None


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

    @property
    def question_text(self) -> str:
        """The question a question-level stage is about."""
        assert self.question is not None, "a question-level stage runs on question items only"
        return self.question.question

    def value(self, stage: str) -> Any:
        """The parsed reply of an earlier stage."""
        return self.outputs[stage].value

    def for_question(self, slot: int, question: Question) -> WorkItem:
        """This video's item for one of its questions (it sees what the video-level stages produced)."""
        return WorkItem(self.video, self.result, slot, question, dict(self.outputs), dict(self.messages))


def video_user_message(text: str) -> list[dict]:
    """One user turn holding the video (frames are attached by the backend) and the text: every stage's
    messages, and the evaluation judge's."""
    return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]


class Stage:
    """One step from a video towards its pairs, bound to the build it runs in (`ctx`).

    A subclass sets the class attributes and writes `messages` and `parse`; `keep` and `expand` are
    optional. Its sampling is the config's `stages.<name>` section, else `defaults`. The paper's four
    stages (question, answer, critique, refine) keep their defaults as typed `StagesConfig` fields: the
    config (core, below the builders) hashes them into every run directory's identity, as it always has.
    """

    name: ClassVar[str]  # the stage in call keys, counts, quarantine records and `stages.<name>`
    fan_out: ClassVar[FanOut]  # one call per video, or one per question
    # the prompt templates it renders (builders/generate/prompts/<name>.txt); each is hashed into the
    # prompt version and the call keys
    templates: ClassVar[tuple[str, ...]]
    defaults: ClassVar[SamplingParams | None] = None  # sampling when the config has no `stages.<name>`
    # A stage that not every build runs (`enabled`); its templates and its config section enter the prompt
    # version and the config hash only when used, so builds without it keep the ids they always had.
    optional: ClassVar[bool] = False

    def __init__(self, ctx: PipelineContext) -> None:
        self.ctx = ctx

    # --- what the build decides ---------------------------------------------------------------------
    @classmethod
    def enabled(cls, cfg: BuildConfig) -> bool:
        """Whether `cfg` runs this stage: always, or for an optional stage when its section is given."""
        return not cls.optional or cfg.stages.section(cls.name) is not None

    @classmethod
    def sampling(cls, cfg: BuildConfig) -> SamplingParams:
        """This stage's section of `cfg.stages` (sampling, and another model where the stage takes one)."""
        params = cfg.stages.section(cls.name) or cls.defaults
        if params is None:
            raise TypeError(f"stage {cls.name!r} has neither a config section nor defaults")
        return params

    @classmethod
    def model(cls, cfg: BuildConfig) -> AnyModelConfig | None:
        """Another model that answers this stage's calls (`stages.critique.model`), or None: the build's."""
        return getattr(cls.sampling(cfg), "model", None)

    @property
    def params(self) -> dict[str, Any]:
        """The sampling parameters alone, as call keys and each row's `generation` hold them."""
        return self.sampling(self.ctx.cfg).model_dump(exclude={"model"})

    @property
    def schema(self) -> dict | None:
        """The JSON schema replies are held to while decoding; None: free text."""
        return None

    # --- one call ----------------------------------------------------------------------------------
    def messages(self, item: WorkItem) -> list[dict]:
        """The chat messages of the call about `item`."""
        raise NotImplementedError

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> Any:
        """The reply as a value; raises `ParseError` (the runner retries with a fresh seed, then quarantines)."""
        raise NotImplementedError

    def keep(self, item: WorkItem, outcome: StageOutcome) -> bool:
        """After a parsed reply: does the item go on? (a stage that says no records why on `item.result`)"""
        return True

    def expand(self, item: WorkItem) -> list[WorkItem]:
        """The items the next stages run on (the question stage: one per question)."""
        return [item]

"""The stages that turn a video into preference pairs, one module each, listed here in the order they run:

    describe  (retrospective builds)  one per video      free text          the critic reads it later
    question                          one per video      JSON (schema)      -> one item per kept question
    answer                            one per question   free text          a0, the rejected side
    critique                          one per question   JSON (schema)      curated: kept only if it names an issue
    refine                            one per question   free text          a1, the chosen side

A stage module holds its `Stage` subclass (stages/base.py) and the pure functions it is made of
(messages in, parsed objects or a `ParseError` with a reason code out); the runner does the model calls,
retries, caching and quarantine. Adding a stage is its module plus one line in `STAGES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import AnswerStage
from videosavi.builders.generate.stages.base import Stage, StageOutcome, WorkItem
from videosavi.builders.generate.stages.critique import CritiqueStage
from videosavi.builders.generate.stages.describe import DescribeStage
from videosavi.builders.generate.stages.questions import QuestionStage
from videosavi.builders.generate.stages.refine import RefineStage
from videosavi.config import BuildConfig, SamplingParams
from videosavi.errors import ConfigError

if TYPE_CHECKING:
    from videosavi.builders.generate.pipeline_items import PipelineContext

# The registry: every stage a build may run, in the order it runs them.
STAGES: tuple[type[Stage], ...] = (
    DescribeStage,
    QuestionStage,
    AnswerStage,
    CritiqueStage,
    RefineStage,
)


def stage_classes(cfg: BuildConfig) -> list[type[Stage]]:
    """The stages `cfg` runs, in order."""
    return [s for s in STAGES if s.enabled(cfg)]


def pair_stages(ctx: PipelineContext) -> list[Stage]:
    """The build's stages, bound to its context: what `VideoPipeline` runs by default."""
    return [cls(ctx) for cls in stage_classes(ctx.cfg)]


def stage_class(name: str) -> type[Stage]:
    for cls in STAGES:
        if cls.name == name:
            return cls
    raise KeyError(name)


def stage_params(cfg: BuildConfig, name: str) -> SamplingParams:
    """Stage `name`'s sampling in `cfg` (its `stages.<name>` section, else the stage's defaults)."""
    return stage_class(name).sampling(cfg)


def prompt_templates(cfg: BuildConfig) -> list[str]:
    """The templates `cfg`'s stages render, in prompt-version order: the stages every build runs first,
    then the optional ones (a build without them keeps the prompt version it always had)."""
    ordered = sorted(stage_classes(cfg), key=lambda s: s.optional)
    return [t for s in ordered for t in s.templates]


def load_prompts(cfg: BuildConfig) -> PromptSet:
    """The bundled templates of `cfg`'s stages."""
    return PromptSet.load(templates=prompt_templates(cfg))


def check_stage_sections(cfg: BuildConfig) -> None:
    """Every `stages.<name>` section names a stage (the config layer cannot know the stages: they live here)."""
    names = [s.name for s in STAGES]
    unknown = [n for n in cfg.stages.sections() if n not in names]
    if unknown:
        raise ConfigError(f"stages.{unknown[0]}: no such stage (the stages: {', '.join(names)})")


__all__ = ["STAGES", "Stage", "StageOutcome", "WorkItem", "check_stage_sections", "load_prompts", "pair_stages",
           "prompt_templates", "stage_class", "stage_classes", "stage_params"]

"""The stages that turn a video into preference pairs, in order, as `Stage` objects (builders/generate/stage.py):

    describe  (retrospective builds)  one per video      free text          the critic reads it later
    question                          one per video      JSON (schema)      -> one item per kept question
    answer                            one per question   free text          a0, the rejected side
    critique                          one per question   JSON (schema)      curated: kept only if it names an issue
    refine                            one per question   free text          a1, the chosen side

Each stage's messages and parser are the pure functions in builders/generate/stages/; what is kept between
stages (duplicate questions, critiques with no issue, refinements equal to the answer or cut off) is
decided here, with the reason counted on the video's result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videosavi.builders.generate.stage import Stage, WorkItem
from videosavi.builders.generate.stage_runner import StageOutcome
from videosavi.builders.generate.stages.answer import answer_messages, parse_answer
from videosavi.builders.generate.stages.critique import critique_messages, critique_schema, parse_critique
from videosavi.builders.generate.stages.describe import describe_messages, parse_description
from videosavi.builders.generate.stages.parsing import ParseError
from videosavi.builders.generate.stages.questions import parse_questions, question_messages, question_schema
from videosavi.builders.generate.stages.refine import parse_refined, refine_messages
from videosavi.curation import critique_has_issue, dedupe_questions, is_truncated, reasons, same_answer

if TYPE_CHECKING:
    from videosavi.builders.generate.pipeline_items import PipelineContext


def pair_stages(ctx: PipelineContext) -> list[Stage]:
    """The build's stages for `ctx`'s config: describe first when the build is retrospective."""
    s = _PairStages(ctx)
    return [*([s.describe()] if ctx.cfg.retrospective else []), s.question(), s.answer(), s.critique(), s.refine()]


class _PairStages:
    """Builds the stage objects; their callables close over the build's context."""

    def __init__(self, ctx: PipelineContext) -> None:
        self.ctx = ctx
        q = ctx.cfg.questions
        self.n_spatial, self.n_temporal = q.spatial, q.temporal
        self.stages_cfg = ctx.cfg.stages

    def _params(self, name: str) -> dict[str, Any]:
        st = self.stages_cfg
        # the sampling parameters only: an external critic (stages.critique.model) is named by the call key's model
        return (st.describe_params if name == "describe" else getattr(st, name)).model_dump(exclude={"model"})

    # --- describe: the retrospective context (ISR-DPO) ------------------------------------------------
    def describe(self) -> Stage:
        previous = self.ctx.previous_descriptions

        def messages(item: WorkItem) -> list[dict]:
            return describe_messages(self.ctx.prompts, item.num_frames, previous.get(item.video.video.video_uid))

        def keep(item: WorkItem, out: StageOutcome) -> bool:
            item.result.description = out.value
            item.result.revised_previous = item.video.video.video_uid in previous
            return True

        return Stage("describe", "video", self._params("describe"), None, messages,
                     lambda text, finish, last: parse_description(text), keep=keep)

    # --- question: one call per video, then one item per kept question ----------------------------------
    def question(self) -> Stage:
        ns, nt = self.n_spatial, self.n_temporal

        def parse(text: str, finish: str, last: bool) -> tuple[list, list]:
            kept, dropped = dedupe_questions(parse_questions(text, ns, nt), self.ctx.curation)
            if dropped and not last:
                raise ParseError("duplicate_questions", f"{len(dropped)} duplicate question(s)")
            return kept, dropped

        def keep(item: WorkItem, out: StageOutcome) -> bool:
            kept, dropped = out.value
            for _q, reason in dropped:
                item.result.filtered[reason] += 1
            item.result.questions = len(kept)
            return True

        def expand(item: WorkItem) -> list[WorkItem]:
            return [item.for_question(i, q) for i, q in enumerate(item.value("question")[0])]

        return Stage("question", "video", self._params("question"), question_schema(ns, nt),
                     lambda item: question_messages(self.ctx.prompts, item.num_frames, ns, nt), parse,
                     keep=keep, expand=expand)

    # --- answer: a0; its messages are the pair's DPO prompt ---------------------------------------------
    def answer(self) -> Stage:
        def messages(item: WorkItem) -> list[dict]:
            assert item.question is not None
            return answer_messages(self.ctx.prompts, item.question.question, item.num_frames)

        return Stage("answer", "question", self._params("answer"), None, messages,
                     lambda text, finish, last: parse_answer(text))

    # --- critique: kept when it names an issue, or whatever it found when the curation keeps those ---------
    def critique(self) -> Stage:
        def messages(item: WorkItem) -> list[dict]:
            assert item.question is not None
            return critique_messages(self.ctx.prompts, item.question.question, item.value("answer"), item.num_frames,
                                     description=item.result.description)

        def keep(item: WorkItem, out: StageOutcome) -> bool:
            if self._names_issue(out.value):
                return True
            item.result.filtered[reasons.NO_ISSUE] += 1
            return False

        return Stage("critique", "question", self._params("critique"), critique_schema(), messages,
                     lambda text, finish, last: parse_critique(text), keep=keep)

    def _names_issue(self, critique: Any) -> bool:
        """Whether the critique may go on to a refinement: always when the curation keeps critiques that
        found nothing (`paper`: the pair stands if the refinement differs from the answer); otherwise only
        when it names a real issue (not an empty list, not only "none"-like placeholders)."""
        cur = self.ctx.curation
        return not cur.drop_no_issue or critique_has_issue(critique, cur.no_issue_phrases)

    # --- refine: a1; kept when it differs from a0 and neither was cut off --------------------------------
    def refine(self) -> Stage:
        def messages(item: WorkItem) -> list[dict]:
            assert item.question is not None
            return refine_messages(self.ctx.prompts, item.question.question, item.value("answer"),
                                   item.value("critique"), item.num_frames)

        def keep(item: WorkItem, out: StageOutcome) -> bool:
            a0, a1 = item.outputs["answer"], out
            if same_answer(a0.value, a1.value):
                item.result.filtered[reasons.SAME_ANSWER] += 1
                return False
            if self.ctx.curation.drop_truncated and (
                is_truncated(a0.value, a0.finish_reason) or is_truncated(a1.value, a1.finish_reason)
            ):
                item.result.filtered[reasons.TRUNCATED_ANSWER] += 1
                return False
            return True

        return Stage("refine", "question", self._params("refine"), None, messages,
                     lambda text, finish, last: parse_refined(text), keep=keep)

"""The stages over a window of decoded videos, batched across videos, into pairs.

For each video: 1 question call, then per question an answer, a critique and (when the critique
found an issue) a refinement: 19 calls for 3 + 3 questions. Each stage runs once for the whole
window so the backend sees large batches; the decoded frames of a video are shared by all its calls.
The stages are `Stage` objects (builders/generate/stages/: one module each, listed in `STAGES`); this
module runs any list of them and knows none by name. `VideoPipeline(runner, ctx, stages=[...])` runs
stages of the caller's own (tests/builders/generate/test_user_stage.py runs a user-defined stage
through a whole window).
"""

from __future__ import annotations

from pydantic import ValidationError

from videosavi.builders.generate.pipeline_items import DecodedVideo, PipelineContext, VideoResult, decoded_meta
from videosavi.builders.generate.stage_runner import StageRunner, StageTask
from videosavi.builders.generate.stages import Stage, StageOutcome, WorkItem, pair_stages
from videosavi.curation import curate_video
from videosavi.schemas import PreferencePair, QuarantineRecord


class VideoPipeline:
    """Runs the build's stages over a window of decoded videos: each stage once for the whole window (so
    the backend sees large batches), on the items the stage before kept; the items that come through the
    last stage become pairs."""

    def __init__(self, runner: StageRunner, ctx: PipelineContext, stages: list[Stage] | None = None) -> None:
        self.runner = runner
        self.ctx = ctx
        self.stages = stages if stages is not None else pair_stages(ctx)

    def process(self, items: list[DecodedVideo]) -> list[VideoResult]:
        results = {it.seq: VideoResult(it.seq, it.video, "done", video_meta=decoded_meta(it.decoded)) for it in items}
        work = [WorkItem(it, results[it.seq]) for it in items]
        for n, stage in enumerate(self.stages):
            last = n == len(self.stages) - 1
            out = self.runner.run([self._task(stage, item) for item in work])
            going_on: list[WorkItem] = []
            for item in work:
                outcome = out[item.task_id]
                question = item.question.question if item.question is not None else None
                if not self._accept(item.result, outcome, stage.name, question):
                    continue
                item.outputs[stage.name] = outcome
                if not stage.keep(item, outcome):
                    continue
                if last:
                    self._add_pair(item)
                going_on += stage.expand(item)
            work = going_on

        for res in results.values():
            if res.status == "done" and res.pairs:
                curated = curate_video(res.pairs, self.ctx.curation)
                res.pairs = list(curated.kept)
                for _pair, reason in curated.dropped:
                    res.filtered[reason] += 1
        return [results[it.seq] for it in items]

    # --- helpers ----------------------------------------------------------------------------
    def _task(self, stage: Stage, item: WorkItem) -> StageTask:
        it = item.video
        messages = stage.messages(item)
        item.messages[stage.name] = messages
        return StageTask(
            task_id=item.task_id, stage=stage.name, video_uid=it.video.video_uid, video_sha256=it.sha256 or "",
            frame_indices=list(it.decoded.sample.frame_indices), frames=it.decoded.frames,
            messages=messages, params=stage.params, json_schema=stage.schema, slot=item.slot, parse=stage.parse,
        )

    def _accept(self, res: VideoResult, out: StageOutcome, stage: str, question: str | None) -> bool:
        """True if the stage succeeded; otherwise record why (quarantine, or pending on transport errors)."""
        if out.ok:
            return True
        if out.transient:
            res.status = "pending"
            res.no_pair_reasons[f"{stage}_call_error"] += 1
            if res.call_error is None:
                res.failed_stage, res.call_error = stage, out.detail or "unknown error"
            return False
        res.no_pair_reasons[f"{stage}_quarantined"] += 1
        res.quarantine.append(QuarantineRecord(
            video_uid=res.video.video_uid, stage=stage, question=question, attempts=max(out.attempts, 1),
            reason=f"{out.reason}: {out.detail}"[:500], raw_text=out.text,
        ))
        return False

    def _add_pair(self, item: WorkItem) -> None:
        """The pair of a question that came through every stage: a0 (rejected) answered from the
        messages it stores as its prompt, the critique, a1 (chosen)."""
        it, res, q = item.video, item.result, item.question
        assert q is not None
        v, sample = it.video, it.decoded.sample
        a0, a1, critique = item.value("answer"), item.value("refine"), item.value("critique")
        try:
            res.pairs.append(PreferencePair.build(
                iteration=self.ctx.iteration, source=v.source, video_id=v.video_id, video_path=v.video_path,
                clip_start=v.clip_start, clip_end=v.clip_end, video_sha256=it.sha256,
                video_num_frames=sample.num_frames, frame_indices=list(sample.frame_indices),
                frame_timestamps=list(sample.frame_timestamps), question_type=q.question_type,
                question=q.question, prompt=item.messages["answer"], rejected=a0, chosen=a1,
                critique=critique.summary, issues=list(critique.issues), model=self.ctx.model_name,
                model_revision=self.ctx.model_revision, prompt_version=self.ctx.prompts.version,
                generation=self.ctx.generation_json, builder_version=self.ctx.builder_version,
                description=res.description,
            ))
        except ValidationError as exc:
            res.no_pair_reasons["invalid_pair"] += 1
            res.quarantine.append(QuarantineRecord(
                video_uid=v.video_uid, stage="pair", question=q.question, attempts=1,
                reason=f"invalid_pair: {exc.errors()[0]['msg']}"[:500],
                raw_text=f"REJECTED: {a0}\nCHOSEN: {a1}",
            ))

"""The four stages over a window of decoded videos, batched across videos, into pairs.

For each video: 1 question call, then per question an answer, a critique and (when the critique
found an issue) a refinement: 19 calls for 3 + 3 questions. Each stage runs once for the whole
window so the backend sees large batches; the decoded frames of a video are shared by all its calls.

A retrospective build (`retrospective: true`, ISR-DPO) first asks for a description of each video,
revising the previous iteration's description of it where there is one (builders/retrospective.py);
the critic sees that description before its instructions, and every pair of the video stores it.
A video whose description fails gets no questions (it is quarantined, or left pending, like one
whose question call fails).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from videosavi.builders.prompts import PromptSet
from videosavi.builders.stage_runner import K, Parser, StageOutcome, StageRunner, StageTask
from videosavi.builders.stages.answer import answer_messages, parse_answer
from videosavi.builders.stages.critique import critique_messages, critique_schema, parse_critique
from videosavi.builders.stages.describe import describe_messages, parse_description
from videosavi.builders.stages.parsing import ParseError
from videosavi.builders.stages.questions import parse_questions, question_messages, question_schema
from videosavi.builders.stages.refine import parse_refined, refine_messages
from videosavi.config import BuildConfig
from videosavi.curation import critique_has_issue, curate_video, dedupe_questions, is_truncated, reasons, same_answer
from videosavi.schemas import Critique, PreferencePair, QuarantineRecord, Question, VideoRef

if TYPE_CHECKING:
    from videosavi.builders.frames import DecodedFrames
    from videosavi.curation import CurationConfig


@dataclass
class DecodedVideo:
    seq: int
    video: VideoRef
    decoded: DecodedFrames

    @property
    def sha256(self) -> str | None:
        """The hash of the bytes the frames were decoded from (`source_decode`); rows and call keys use
        it, never a hash taken earlier from a file that may have been replaced since."""
        return self.decoded.sha256 or self.video.sha256


@dataclass
class VideoResult:
    seq: int
    video: VideoRef
    status: str  # "done" | "pending" (transient call errors: retried by the next run)
    pairs: list[PreferencePair] = field(default_factory=list)
    quarantine: list[QuarantineRecord] = field(default_factory=list)
    no_pair_reasons: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    questions: int = 0
    video_meta: dict[str, Any] = field(default_factory=dict)  # duration, fps, num_frames as decoded
    description: str | None = None  # retrospective builds: this iteration's description of the video
    revised_previous: bool = False  # ... written as a revision of the previous iteration's

    def summary(self) -> dict[str, Any]:
        out = {
            "questions": self.questions,
            "pairs": len(self.pairs),
            "no_pair_reasons": dict(self.no_pair_reasons),
            "filtered": dict(self.filtered),
            "video": self.video_meta,
        }
        if self.description is not None:
            out["described"] = {"revised_previous": self.revised_previous}
        return out


def decoded_meta(decoded: DecodedFrames) -> dict[str, Any]:
    """The `VideoRef` fields only decoding learns (sampling reads no video headers: a hostile file must
    meet FFmpeg in a decoder worker, never in the build process)."""
    return {"duration": round(float(decoded.duration), 6), "fps": round(float(decoded.fps), 6),
            "num_frames": int(decoded.sample.num_frames)}


@dataclass
class PipelineContext:
    cfg: BuildConfig
    curation: CurationConfig
    prompts: PromptSet
    iteration: int
    model_name: str
    model_revision: str
    builder_version: str
    generation_json: str
    previous_descriptions: Mapping[str, str] = field(default_factory=dict)  # video_uid -> iteration t-1's


class VideoPipeline:
    def __init__(self, runner: StageRunner, ctx: PipelineContext) -> None:
        self.runner = runner
        self.ctx = ctx
        q = ctx.cfg.questions
        self.n_spatial, self.n_temporal = q.spatial, q.temporal
        self._q_schema = question_schema(self.n_spatial, self.n_temporal)
        self._c_schema = critique_schema()
        st = ctx.cfg.stages
        self._params = {name: getattr(st, name).model_dump() for name in ("question", "answer", "critique", "refine")}
        self._params["describe"] = st.describe_params.model_dump()
        self.retrospective = ctx.cfg.retrospective

    # --- parsing hooks ----------------------------------------------------------------------
    def _parse_questions(self, text: str, finish: str, last: bool) -> tuple[list[Question], list]:
        questions = parse_questions(text, self.n_spatial, self.n_temporal)
        kept, dropped = dedupe_questions(questions, self.ctx.curation)
        if dropped and not last:
            raise ParseError("duplicate_questions", f"{len(dropped)} duplicate question(s)")
        return kept, dropped

    @staticmethod
    def _parse_answer(text: str, finish: str, last: bool) -> str:
        return parse_answer(text)

    @staticmethod
    def _parse_description(text: str, finish: str, last: bool) -> str:
        return parse_description(text)

    @staticmethod
    def _parse_critique(text: str, finish: str, last: bool) -> Critique:
        return parse_critique(text)

    @staticmethod
    def _parse_refined(text: str, finish: str, last: bool) -> str:
        return parse_refined(text)

    # --- the window -------------------------------------------------------------------------
    def _describe(self, items: list[DecodedVideo], results: dict[int, VideoResult]) -> list[DecodedVideo]:
        """The retrospective stage: describe each video (revising last iteration's description where one
        exists); returns the videos that have a description now."""
        previous = self.ctx.previous_descriptions
        d_out = self.runner.run([self._task(it.seq, it, "describe", 0, describe_messages(
            self.ctx.prompts, self._n(it), previous.get(it.video.video_uid)), None, self._parse_description)
            for it in items])
        described = []
        for it in items:
            res = results[it.seq]
            if self._accept(res, d_out[it.seq], "describe", None):
                res.description = d_out[it.seq].value
                res.revised_previous = it.video.video_uid in previous
                described.append(it)
        return described

    def process(self, items: list[DecodedVideo]) -> list[VideoResult]:
        results = {it.seq: VideoResult(it.seq, it.video, "done", video_meta=decoded_meta(it.decoded)) for it in items}
        by_seq = {it.seq: it for it in items}
        asked = self._describe(items, results) if self.retrospective else items

        q_out = self.runner.run([self._task(it.seq, it, "question", 0, question_messages(
            self.ctx.prompts, self._n(it), self.n_spatial, self.n_temporal), self._q_schema, self._parse_questions)
            for it in asked])
        questions: dict[int, list[Question]] = {}
        for seq, out in q_out.items():
            res = results[seq]
            if not self._accept(res, out, "question", None):
                continue
            kept, dropped = out.value
            for _q, reason in dropped:
                res.filtered[reason] += 1
            questions[seq] = kept
            res.questions = len(kept)

        # The messages a0 is generated from are kept: each pair stores them as its DPO prompt.
        a_messages = {(seq, i): answer_messages(self.ctx.prompts, q.question, self._n(by_seq[seq]))
                      for seq, qs in questions.items() for i, q in enumerate(qs)}
        a_tasks = [self._task((seq, i), by_seq[seq], "answer", i, messages, None, self._parse_answer)
                   for (seq, i), messages in a_messages.items()]
        a_out = self.runner.run(a_tasks)
        answers = {tid: out for tid, out in a_out.items()
                   if self._accept(results[tid[0]], out, "answer", questions[tid[0]][tid[1]].question)}

        c_tasks = [
            self._task((seq, i), by_seq[seq], "critique", i, critique_messages(
                self.ctx.prompts, questions[seq][i].question, answers[(seq, i)].value, self._n(by_seq[seq]),
                description=results[seq].description), self._c_schema, self._parse_critique)
            for (seq, i) in answers
        ]
        c_out = self.runner.run(c_tasks)
        critiques = {}
        for tid, out in c_out.items():
            if self._accept(results[tid[0]], out, "critique", questions[tid[0]][tid[1]].question):
                if not self._names_issue(out.value):
                    results[tid[0]].filtered[reasons.NO_ISSUE] += 1
                    continue
                critiques[tid] = out

        r_tasks = [
            self._task((seq, i), by_seq[seq], "refine", i, refine_messages(
                self.ctx.prompts, questions[seq][i].question, answers[(seq, i)].value, critiques[(seq, i)].value,
                self._n(by_seq[seq])), None, self._parse_refined)
            for (seq, i) in critiques
        ]
        r_out = self.runner.run(r_tasks)

        for (seq, i), out in sorted(r_out.items()):
            res = results[seq]
            q = questions[seq][i]
            if not self._accept(res, out, "refine", q.question):
                continue
            a0, a1 = answers[(seq, i)], out
            if same_answer(a0.value, a1.value):
                res.filtered[reasons.SAME_ANSWER] += 1
                continue
            if self.ctx.curation.drop_truncated and (
                is_truncated(a0.value, a0.finish_reason) or is_truncated(a1.value, a1.finish_reason)
            ):
                res.filtered[reasons.TRUNCATED_ANSWER] += 1
                continue
            pair = self._make_pair(by_seq[seq], q, a_messages[(seq, i)], a0.value, critiques[(seq, i)].value,
                                   a1.value, res)
            if pair is not None:
                res.pairs.append(pair)

        for res in results.values():
            if res.status == "done" and res.pairs:
                curated = curate_video(res.pairs, self.ctx.curation)
                res.pairs = list(curated.kept)
                for _pair, reason in curated.dropped:
                    res.filtered[reason] += 1
        return [results[it.seq] for it in items]

    # --- helpers ----------------------------------------------------------------------------
    def _names_issue(self, critique: Critique) -> bool:
        """A pair needs at least one issue (the record requires it, and refining needs something to fix);
        placeholder issues ("none") count as none only when the curation says so."""
        if not critique.issues:
            return False
        cur = self.ctx.curation
        return not cur.drop_no_issue or critique_has_issue(critique, cur.no_issue_phrases)

    def _n(self, it: DecodedVideo) -> int:
        return len(it.decoded.sample.frame_indices)

    def _task(self, task_id: K, it: DecodedVideo, stage: str, slot: int, messages: list[dict],
              schema: dict | None, parse: Parser) -> StageTask[K]:
        return StageTask(
            task_id=task_id,
            stage=stage, video_uid=it.video.video_uid, video_sha256=it.sha256 or "",
            frame_indices=list(it.decoded.sample.frame_indices), frames=it.decoded.frames,
            messages=messages, params=self._params[stage], json_schema=schema, slot=slot, parse=parse,
        )

    def _accept(self, res: VideoResult, out: StageOutcome, stage: str, question: str | None) -> bool:
        """True if the stage succeeded; otherwise record why (quarantine, or pending on transport errors)."""
        if out.ok:
            return True
        if out.transient:
            res.status = "pending"
            res.no_pair_reasons[f"{stage}_call_error"] += 1
            return False
        res.no_pair_reasons[f"{stage}_quarantined"] += 1
        res.quarantine.append(QuarantineRecord(
            video_uid=res.video.video_uid, stage=stage, question=question, attempts=max(out.attempts, 1),
            reason=f"{out.reason}: {out.detail}"[:500], raw_text=out.text,
        ))
        return False

    def _make_pair(self, it: DecodedVideo, q: Question, prompt: list[dict], a0: str, critique: Critique, a1: str,
                   res: VideoResult) -> PreferencePair | None:
        v, sample = it.video, it.decoded.sample
        try:
            return PreferencePair.build(
                iteration=self.ctx.iteration, source=v.source, video_id=v.video_id, video_path=v.video_path,
                clip_start=v.clip_start, clip_end=v.clip_end, video_sha256=it.sha256,
                video_num_frames=sample.num_frames, frame_indices=list(sample.frame_indices),
                frame_timestamps=list(sample.frame_timestamps), question_type=q.question_type,
                question=q.question, prompt=prompt, rejected=a0, chosen=a1, critique=critique.summary,
                issues=list(critique.issues), model=self.ctx.model_name, model_revision=self.ctx.model_revision,
                prompt_version=self.ctx.prompts.version, generation=self.ctx.generation_json,
                builder_version=self.ctx.builder_version, description=res.description,
            )
        except ValidationError as exc:
            res.no_pair_reasons["invalid_pair"] += 1
            res.quarantine.append(QuarantineRecord(
                video_uid=v.video_uid, stage="pair", question=q.question, attempts=1,
                reason=f"invalid_pair: {exc.errors()[0]['msg']}"[:500],
                raw_text=f"REJECTED: {a0}\nCHOSEN: {a1}",
            ))
            return None

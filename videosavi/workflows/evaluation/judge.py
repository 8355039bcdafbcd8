"""`savi eval judge`: a judge model lists the errors of every answer by error type (and, with
`severity=True`, rates each critical or minor).

Answers folders of one eval set only (same `set_id` and `question_version`), each under its own
label. Each question's frames are decoded once and shown to the judge with every folder's answer to
it. A reply that does not parse is retried with a fresh seed, then kept as `unjudged` with its raw
text (and in `quarantine.jsonl`); a question a folder has no answer to is `unanswered`. Neither is
ever counted as an answer without errors. Calls go through the SQLite call cache, so an interrupted
or extended run (one more answers folder) makes only the missing calls.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from videosavi.builders.generate.batching import windows
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.stage_runner import CallContext, StageOutcome, StageRunner, StageTask
from videosavi.builders.run.runner import display_model_name
from videosavi.config import AnyModelConfig as ModelConfig
from videosavi.errors import DatasetError
from videosavi.run_dir import RunDir, atomic_write_text
from videosavi.schemas import QuarantineRecord
from videosavi.schemas.evaluation import (
    AnswersInfo,
    EvalAnswer,
    EvalQuestion,
    EvalSetInfo,
    JudgedAnswers,
    JudgeInfo,
    JudgementRecord,
)
from videosavi.version import __version__
from videosavi.workflows.evaluation.answer import question_slot
from videosavi.workflows.evaluation.eval_dir import AnswersDir, JudgeDir, check_spec, write_rows
from videosavi.workflows.evaluation.frames import check_videos, decoded_questions
from videosavi.workflows.evaluation.judge_stage import JudgePrompt, judge_schema, parse_judgement, schema_hash
from videosavi.workflows.evaluation.make_set import EVAL_ITERATION
from videosavi.workflows.evaluation.models import load_quietly

MAX_ATTEMPTS = 3
DEFAULT_MAX_NEW_TOKENS = 1024


@dataclass(frozen=True)
class LoadedAnswers:
    label: str
    path: Path
    info: AnswersInfo
    answers: dict[str, EvalAnswer]


@dataclass
class JudgeResult:
    info: JudgeInfo
    labels: list[str]
    records: list[JudgementRecord]
    quarantine: list[QuarantineRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    call_errors: int = 0


def load_answer_dirs(dirs: Sequence[Path]) -> tuple[list[LoadedAnswers], EvalSetInfo, list[EvalQuestion]]:
    """The answers folders, checked to answer one and the same eval set, with distinct labels."""
    if not dirs:
        raise DatasetError("give at least one answers folder (savi eval answer --out ...)")
    loaded = []
    for d in dirs:
        ad = AnswersDir(d)
        info = ad.read_info()
        loaded.append(LoadedAnswers(info.label, ad.path, info, {a.question_id: a for a in ad.read_answers()}))
    first = loaded[0]
    for other in loaded[1:]:
        if (other.info.set_id, other.info.question_version) != (first.info.set_id, first.info.question_version):
            raise DatasetError(
                f"{other.path} answers eval set {other.info.set_id} (questions {other.info.question_version}) but "
                f"{first.path} answers {first.info.set_id} (questions {first.info.question_version}): "
                "judge answers of one eval set only")
    labels = [a.label for a in loaded]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise DatasetError(f"two answers folders share the label {twice[0]!r}: give each its own "
                           "(savi eval answer --label iterN)")
    es = AnswersDir(first.path).eval_set
    return loaded, es.read_info(), es.read_questions()


def _record(label: str, q: EvalQuestion, out: StageOutcome) -> JudgementRecord:
    if out.ok:
        j = out.value
        return JudgementRecord(label=label, question_id=q.question_id, question_type=q.question_type, status="judged",
                               errors=list(j.errors), assessment=j.assessment, raw_text=out.text,
                               attempts=out.attempts)
    return JudgementRecord(label=label, question_id=q.question_id, question_type=q.question_type, status="unjudged",
                           raw_text=out.text or None, reason=f"{out.reason}: {out.detail}"[:300],
                           attempts=out.attempts)


def judge_answers(answer_dirs: Sequence[Path], judge_cfg: ModelConfig, out: Path, *, data_root: Path,
                  max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, force: bool = False, workers: int = 2,
                  severity: bool = False) -> JudgeResult:
    """Judge every answer of `answer_dirs`; writes the judgements under `out` (see eval_dir.py)."""
    loaded, set_info, questions = load_answer_dirs(answer_dirs)
    check_videos(questions, set_info, Path(data_root))
    jd = JudgeDir(out)
    jd.path.mkdir(parents=True, exist_ok=True)
    prompt = JudgePrompt.load(severity)
    params = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": max_new_tokens}
    # unconstrained: no schema reaches the backend (nor the call key); replies are still validated
    schema = judge_schema(severity) if judge_cfg.constrained else None
    backend = load_quietly(judge_cfg)
    judge = backend.info.model_copy(update={"name_or_path": display_model_name(backend.info.name_or_path)})
    cache = CallCache(jd.cache_db)
    records: dict[tuple[str, str], JudgementRecord] = {}
    quarantine: list[QuarantineRecord] = []
    call_errors = 0
    try:
        check_spec(cache, {"set_id": set_info.set_id, "question_version": set_info.question_version,
                           "judge": judge.name_or_path, "revision": judge.revision, "prompt": prompt.hash,
                           "schema": schema_hash(severity), "params": params, "constrained": judge_cfg.constrained,
                           "severity": severity},
                   jd.path, force)
        runner = StageRunner(backend, cache, CallContext(
            model=backend.info.name_or_path, revision=backend.info.revision, prompt_hashes={"judge": prompt.hash},
            base_seed=set_info.seed, iteration=EVAL_ITERATION, max_attempts=MAX_ATTEMPTS),
            batch_size=judge_cfg.batch_size)
        stream = decoded_questions(questions, set_info, Path(data_root), workers=workers, prefetch=judge_cfg.batch_size)
        for window in windows(stream, judge_cfg.batch_size):
            tasks: list[StageTask[tuple[str, str]]] = []
            by_task: dict[Hashable, tuple[str, EvalQuestion]] = {}
            for q, frames in window:
                for a in loaded:
                    answer = a.answers.get(q.question_id)
                    if answer is None or answer.answer is None:
                        reason = answer.failure if answer is not None else "no row for this question"
                        records[(a.label, q.question_id)] = JudgementRecord(
                            label=a.label, question_id=q.question_id, question_type=q.question_type,
                            status="unanswered", reason=reason)
                    elif isinstance(frames, Exception):
                        records[(a.label, q.question_id)] = JudgementRecord(
                            label=a.label, question_id=q.question_id, question_type=q.question_type,
                            status="unjudged", reason=f"decode: {getattr(frames, 'reason', 'error')}")
                    else:
                        by_task[(a.label, q.question_id)] = (a.label, q)
                        tasks.append(StageTask(
                            task_id=(a.label, q.question_id), stage="judge", video_uid=q.video_uid,
                            video_sha256=q.video_sha256, frame_indices=list(q.frame_indices), frames=frames,
                            messages=prompt.messages(q.question, answer.answer, len(q.frame_indices)), params=params,
                            json_schema=schema, slot=question_slot(q.question_id),
                            parse=lambda text, finish, last: parse_judgement(text, severity)))
            for tid, outcome in runner.run(tasks).items():
                label, q = by_task[tid]
                records[(label, q.question_id)] = _record(label, q, outcome)
                if not outcome.ok:
                    call_errors += outcome.transient
                    quarantine.append(QuarantineRecord(
                        video_uid=q.video_uid, stage="judge", question=f"{label} {q.question_id}: {q.question}",
                        attempts=max(outcome.attempts, 1), reason=f"{outcome.reason}: {outcome.detail}"[:500],
                        raw_text=outcome.text))
    finally:
        cache.close()
        backend.close()
    labels = [a.label for a in loaded]
    ordered = [records[(label, q.question_id)] for label in labels for q in questions]
    info = JudgeInfo(
        set_id=set_info.set_id, question_version=set_info.question_version, judge=judge, prompt_hash=prompt.hash,
        schema_hash=schema_hash(severity), params={**params, "constrained": judge_cfg.constrained}, severity=severity,
        answers=[JudgedAnswers(label=a.label, path=str(a.path), model=a.info.model) for a in loaded],
        videosavi_version=__version__, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    write_rows(jd.judgements, ordered, JudgementRecord)
    RunDir(jd.path).write_quarantine(quarantine)
    atomic_write_text(jd.prompt, prompt.text)
    atomic_write_text(jd.info_json, info.model_dump_json(indent=2) + "\n")
    notes = []
    if len({a.info.prompt_hash for a in loaded}) > 1:
        notes.append("the answers were made with different answer prompts: " + ", ".join(
            f"{a.label} {a.info.prompt_hash}" for a in loaded))
    return JudgeResult(info, labels, ordered, quarantine, notes, call_errors)

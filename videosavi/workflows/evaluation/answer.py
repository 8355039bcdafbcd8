"""`savi eval answer`: one model answers every question of an eval set, as the build's answer stage.

The prompt is the answer stage's (the one DPO trains on) and the sampling the set recorded from its
config, so the answers of iteration 1 and iteration 4 differ only by the model. Call seeds depend on
the set and the question, not on the model, and calls go through the build's SQLite cache: a killed
run resumes, and a call that failed on the network is made again by the next run of the same command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from videosavi.builders.generate.batching import windows
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stage_runner import CallContext, StageRunner, StageTask
from videosavi.builders.generate.stages.answer import answer_messages, parse_answer
from videosavi.builders.run.runner import display_model_name
from videosavi.config import AnyModelConfig as ModelConfig
from videosavi.errors import ConfigError
from videosavi.schemas.evaluation import AnswersInfo, EvalAnswer
from videosavi.version import __version__
from videosavi.workflows.evaluation.eval_dir import AnswersDir, EvalSetDir, check_spec
from videosavi.workflows.evaluation.frames import check_videos, decoded_questions
from videosavi.workflows.evaluation.make_set import EVAL_ITERATION
from videosavi.workflows.evaluation.models import load_quietly

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class AnswerResult:
    info: AnswersInfo
    out: Path
    call_errors: int  # answers missing because of transport errors: a re-run retries them


def question_slot(question_id: str) -> int:
    """The seed slot of a question: its number, so every model answers q0007 under the same seed."""
    return int(question_id.lstrip("q"))


def answer_eval_set(set_dir: Path, model_cfg: ModelConfig, out: Path, *, data_root: Path,
                    label: str | None = None, force: bool = False, workers: int = 2) -> AnswerResult:
    """Answer every question of the set in `set_dir` with `model_cfg`; write `out` (see eval_dir.py)."""
    es = EvalSetDir(set_dir)
    if Path(out).resolve() == es.path.resolve():
        raise ConfigError("--out must be a folder of its own, not the eval set's (--set)")
    info = es.read_info()
    questions = es.read_questions()
    check_videos(questions, info, Path(data_root))
    ad = AnswersDir(out)
    ad.path.mkdir(parents=True, exist_ok=True)
    prompts = PromptSet.load()
    prompt_hash = prompts.hashes["answer"]
    backend = load_quietly(model_cfg)
    model = backend.info.model_copy(update={"name_or_path": display_model_name(backend.info.name_or_path)})
    cache = CallCache(ad.cache_db)
    answers: dict[str, EvalAnswer] = {}
    call_errors = 0
    try:
        spec = {"set_id": info.set_id, "question_version": info.question_version, "model": model.name_or_path,
                "revision": model.revision, "prompt": prompt_hash, "params": info.answer_params}
        check_spec(cache, spec, ad.path, force)
        runner = StageRunner(backend, cache, CallContext(
            model=backend.info.name_or_path, revision=backend.info.revision, prompt_hashes={"answer": prompt_hash},
            base_seed=info.seed, iteration=EVAL_ITERATION, max_attempts=MAX_ATTEMPTS), batch_size=model_cfg.batch_size)
        stream = decoded_questions(questions, info, Path(data_root), workers=workers,
                                   prefetch=model_cfg.batch_size * 2)
        for window in windows(stream, model_cfg.batch_size):
            tasks: list[StageTask[str]] = []
            for q, frames in window:
                if isinstance(frames, Exception):
                    answers[q.question_id] = EvalAnswer(question_id=q.question_id, answer=None, finish_reason="",
                                                        failure=f"decode: {getattr(frames, 'reason', 'error')}")
                    continue
                tasks.append(StageTask(
                    task_id=q.question_id, stage="answer", video_uid=q.video_uid, video_sha256=q.video_sha256,
                    frame_indices=list(q.frame_indices), frames=frames,
                    messages=answer_messages(prompts, q.question, len(q.frame_indices)), params=info.answer_params,
                    json_schema=None, slot=question_slot(q.question_id),
                    parse=lambda text, finish, last: parse_answer(text)))
            for qid, out_ in runner.run(tasks).items():
                if out_.ok:
                    answers[qid] = EvalAnswer(question_id=qid, answer=out_.value, finish_reason=out_.finish_reason)
                else:
                    call_errors += out_.transient
                    answers[qid] = EvalAnswer(question_id=qid, answer=None, finish_reason="",
                                              failure=f"{out_.reason}: {out_.detail}"[:300])
    finally:
        cache.close()
        backend.close()
    rows = [answers[q.question_id] for q in questions]
    n_answered = sum(a.answer is not None for a in rows)
    record = AnswersInfo(
        label=label or ad.path.resolve().name, set_id=info.set_id, question_version=info.question_version,
        model=model, prompt_hash=prompt_hash, params=info.answer_params, n_answered=n_answered,
        n_failed=len(rows) - n_answered, videosavi_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    es.copy_to(ad.path)
    ad.write(record, rows)
    return AnswerResult(record, ad.path, call_errors)

"""`savi eval make-set`: a fixed set of questions, written once, by one of two protocols.

`held-out` (the default): questions about held-out videos, which no build of the config can use.
`paper` (`make_paper_eval_set`): the paper's Table 2 protocol, questions taken from iteration 1's
published pairs (their videos and the frames the model saw), so every later model answers what
iteration 1 asked itself. The rest of this docstring is about the held-out draw.

Videos come from `draw.eval_candidates` (held out from every build of the config). Each video
yields one question, spatial and temporal in turn, so the set is balanced; the question is written
by the config's model (the iteration-1 model, through the build's question prompt and schema, asking
for one question of each type and keeping the one whose turn it is) or taken from a file. Frames are
the config's uniform sample, stored as indices so every later model and the judge see the same ones.
A video that cannot be decoded, or whose question stays malformed, is recorded and replaced by the
next one. Model calls go through the build's call cache, so an interrupted run resumes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast

from videosavi.builders.decode.frames import DecodedFrames
from videosavi.builders.decode.pool import FrameDecoderPool
from videosavi.builders.decode.source_decode import decode_sampled_video
from videosavi.builders.generate.batching import windows
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stage_runner import CallContext, StageRunner, StageTask
from videosavi.builders.generate.stages.questions import parse_questions, question_messages, question_schema
from videosavi.builders.run.runner import display_model_name
from videosavi.builders.version import BUILDER_VERSION
from videosavi.config import BuildConfig
from videosavi.errors import ConfigError, RunDirMismatchError
from videosavi.hashing import stable_hash
from videosavi.schemas import QUESTION_TYPES, ModelInfo, QuestionType, VideoRef, VideoSkip
from videosavi.schemas.evaluation import EvalQuestion, EvalSetInfo
from videosavi.version import __version__
from videosavi.workflows.evaluation.draw import eval_candidates, find_held_out, require_holdout
from videosavi.workflows.evaluation.eval_dir import EvalSetDir
from videosavi.workflows.evaluation.models import load_quietly
from videosavi.workflows.evaluation.questions_file import GivenQuestion, read_questions_file

DEFAULT_N = 200
EVAL_ITERATION = 0  # the seed space of eval calls, apart from every build iteration's


@dataclass
class Drawn:
    """What making the set produced, before it is written."""

    questions: list[EvalQuestion] = field(default_factory=list)
    skipped: list[VideoSkip] = field(default_factory=list)
    model: ModelInfo | None = None
    prompt_hash: str | None = None


def _skip(video: VideoRef, reason: str, message: str = "") -> VideoSkip:
    return VideoSkip(video_uid=video.video_uid, source=video.source, video_path=video.video_path, reason=reason,
                     message=message[:500])


def _question(k: int, video: VideoRef, decoded: DecodedFrames, question_type: QuestionType, text: str) -> EvalQuestion:
    s = decoded.sample
    assert video.sha256 is not None  # `_decode` sets it from the bytes decoded
    return EvalQuestion(
        question_id=f"q{k + 1:04d}", source=video.source, video_id=video.video_id, video_path=video.video_path,
        clip_start=video.clip_start, clip_end=video.clip_end, video_sha256=video.sha256,
        video_num_frames=s.num_frames, frame_indices=list(s.frame_indices), frame_timestamps=list(s.frame_timestamps),
        question_type=question_type, question=text,
    )


def _decode(pool: FrameDecoderPool, videos: Iterator[VideoRef], cfg: BuildConfig, data_root: Path,
            drawn: Drawn) -> Iterator[tuple[VideoRef, DecodedFrames]]:
    """Decoded available videos in stream order; unavailable and undecodable ones recorded as skipped."""
    by_uid: dict[str, VideoRef] = {}

    def tasks() -> Iterator[tuple]:
        for v in videos:
            if not v.available:
                drawn.skipped.append(_skip(v, v.unavailable_reason or "unavailable"))
                continue
            by_uid[v.video_uid] = v
            src = cfg.sources[v.source]
            root = data_root / src.root
            yield (v.video_uid, str(root / v.video_path), str(root), v.video_path, src.follow_symlinks, v.sha256,
                   cfg.frames.num_frames, v.clip_start, v.clip_end, cfg.frames.resize)

    for uid, out in pool.decode_many(tasks(), prefetch=max(cfg.model.batch_size, cfg.frames.workers) * 2):
        video = by_uid.pop(uid)
        if isinstance(out, Exception):
            drawn.skipped.append(_skip(video, getattr(out, "reason", "decode_error"), str(out)))
        else:  # the hash of the bytes decoded (equal to the drawn one, or the video was skipped)
            yield video.model_copy(update={"sha256": out.sha256 or video.sha256}), out


def _from_model(cfg: BuildConfig, data_root: Path, n: int, cache_path: Path) -> Drawn:
    drawn = Drawn()
    prompts = PromptSet.load()
    schema = question_schema(1, 1)
    params = cfg.stages.question.model_dump()
    backend = load_quietly(cfg.model)
    drawn.model = backend.info.model_copy(update={"name_or_path": display_model_name(backend.info.name_or_path)})
    drawn.prompt_hash = prompts.hashes["question"]
    cache = CallCache(cache_path)
    try:
        runner = StageRunner(backend, cache, CallContext(
            model=backend.info.name_or_path, revision=backend.info.revision,
            prompt_hashes={"question": drawn.prompt_hash}, base_seed=cfg.seed, iteration=EVAL_ITERATION,
            max_attempts=cfg.stages.max_attempts), batch_size=cfg.model.batch_size)
        with FrameDecoderPool(workers=cfg.frames.workers, timeout_s=cfg.frames.timeout_s,
                              task_fn=decode_sampled_video) as pool:
            stream = _decode(pool, eval_candidates(cfg, data_root), cfg, data_root, drawn)
            for window in windows(stream, cfg.model.batch_size):
                tasks = [StageTask(
                    task_id=video.video_uid, stage="question", video_uid=video.video_uid,
                    video_sha256=video.sha256 or "", frame_indices=list(decoded.sample.frame_indices),
                    frames=decoded.frames, messages=question_messages(prompts, len(decoded.sample.frame_indices), 1, 1),
                    params=params, json_schema=schema, slot=0,
                    parse=lambda text, finish, last: parse_questions(text, 1, 1),
                ) for video, decoded in window]
                outcomes = runner.run(tasks)
                for video, decoded in window:
                    out = outcomes[video.video_uid]
                    if not out.ok:
                        drawn.skipped.append(_skip(video, f"question_{out.reason}", out.detail))
                        continue
                    k = len(drawn.questions)
                    qtype = cast(QuestionType, QUESTION_TYPES[k % len(QUESTION_TYPES)])
                    text = next(q.question for q in out.value if q.question_type == qtype)
                    drawn.questions.append(_question(k, video, decoded, qtype, text))
                    if len(drawn.questions) == n:
                        return drawn
    finally:
        cache.close()
        backend.close()
    return drawn


def _from_file(cfg: BuildConfig, data_root: Path, given: list[GivenQuestion]) -> Drawn:
    drawn = Drawn()
    found, not_held = find_held_out(cfg, data_root, [g.video_uid for g in given])
    if not_held:
        raise ConfigError(
            f"{len(not_held)} video(s) of --questions are not held out by this config, so a build may use them "
            f"(e.g. {', '.join(not_held[:3])}): pick videos of the eval pool (`eval.holdout`)"
        )
    videos = {g.video_uid: found[g.video_uid] for g in given}  # each video decoded once
    with FrameDecoderPool(workers=cfg.frames.workers, timeout_s=cfg.frames.timeout_s,
                          task_fn=decode_sampled_video) as pool:
        frames = {v.video_uid: out for v, out in _decode(pool, iter(videos.values()), cfg, data_root, drawn)}
    for g in given:
        if g.video_uid in frames:
            video = found[g.video_uid]
            drawn.questions.append(_question(len(drawn.questions), video, frames[g.video_uid], g.question_type,
                                             g.question))
    return drawn


def _ids(cfg: BuildConfig, questions: list[EvalQuestion], protocol: str = "held-out",
         questions_revision: str | None = None) -> tuple[str, str]:
    """(set_id, question_version): the draw, and the questions' words."""
    rule = cfg.eval.model_dump(mode="json") if cfg.eval else None
    videos = [[q.question_id, q.video_uid, q.video_sha256, q.frame_indices] for q in questions]
    drawn: dict[str, Any] = {"sources": {k: v.key_dump() for k, v in cfg.sources.items()},
                             "seed": cfg.seed, "holdout": rule, "videos": videos}
    if protocol != "held-out":  # the held-out ids stay what they were
        drawn.update(protocol=protocol, revision=questions_revision)
    set_id = "set-" + stable_hash(drawn)
    version = "qv-" + stable_hash([[q.question_id, q.video_uid, q.question_type, q.question] for q in questions])
    return set_id, version


def pick_paper_questions(rows: Sequence[Mapping[str, Any]], n: int, seed: int) -> list[Mapping[str, Any]]:
    """`n` of iteration 1's pairs, in a seeded order fixed by their pair ids: spatial and temporal in
    turn and one per video while there are videos left (the held-out set's balance), then the rest of
    the order. Pure, so the same revision and seed always give the same set."""
    order = sorted(rows, key=lambda r: stable_hash([seed, r["pair_id"]]))
    picked: list[Mapping[str, Any]] = []
    used_videos: set[str] = set()
    taken: set[str] = set()
    for one_per_video in (True, False):
        while len(picked) < n:
            turn = QUESTION_TYPES[len(picked) % len(QUESTION_TYPES)]
            fits = [r for r in order if r["pair_id"] not in taken
                    and (not one_per_video or r["video_uid"] not in used_videos)]
            if not fits:
                break
            row = next((r for r in fits if r["question_type"] == turn), fits[0])
            picked.append(row)
            taken.add(row["pair_id"])
            used_videos.add(row["video_uid"])
    return picked


def make_paper_eval_set(cfg: BuildConfig, out: Path, rows: Sequence[Mapping[str, Any]], *, revision_label: str,
                        n: int | None = None, force: bool = False) -> EvalSetInfo:
    """The paper's protocol: `n` (default 200) questions of iteration 1's published pairs `rows` (record
    columns), each with the video and frames the pair was made from. `cfg` supplies the source roots,
    frame resize and answer sampling, as for the held-out set; no holdout is needed."""
    es = _prepare_out(out, force)
    n = n or DEFAULT_N
    if n < 1:
        raise ConfigError("--n must be at least 1")
    iterations = sorted({int(r["iteration"]) for r in rows})
    if iterations != [1]:
        raise ConfigError(f"{revision_label} holds pairs of iteration(s) {iterations}: the paper's protocol asks "
                          "iteration 1's questions, pass its revision (--revision iter1)")
    unknown = sorted({str(r["source"]) for r in rows} - set(cfg.sources))
    if unknown:
        raise ConfigError(f"{revision_label} has pairs of source(s) {', '.join(unknown)} that the config does not "
                          "name: pass the config the revision was built with (its video roots are needed)")
    if len(rows) < n:
        raise ConfigError(f"{revision_label} holds {len(rows)} pairs, fewer than --n {n}")
    picked = pick_paper_questions(rows, n, cfg.seed)
    questions = [EvalQuestion(
        question_id=f"q{k + 1:04d}", source=r["source"], video_id=r["video_id"], video_path=r["video_path"],
        clip_start=r["clip_start"], clip_end=r["clip_end"], video_sha256=r["video_sha256"],
        video_num_frames=r["video_num_frames"], frame_indices=list(r["frame_indices"]),
        frame_timestamps=list(r["frame_timestamps"]), question_type=r["question_type"], question=r["question"],
    ) for k, r in enumerate(picked)]
    return _write_set(cfg, es, Drawn(questions=questions), protocol="paper", questions_from="revision",
                      questions_revision=revision_label)


def _prepare_out(out: Path, force: bool) -> EvalSetDir:
    es = EvalSetDir(out)
    if es.exists():
        if not force:
            raise RunDirMismatchError(
                f"{es.path} already holds an eval set ({es.read_info().set_id}): a fixed set is never remade in "
                "place; use another --out, or --overwrite to replace it (answers made on it will no longer match)")
        for p in (es.info_json, es.questions):
            p.unlink()
    return es


def make_eval_set(cfg: BuildConfig, data_root: Path, out: Path, *, n: int | None = None,
                  questions_file: Path | None = None, force: bool = False) -> EvalSetInfo:
    """Draw, question and write the set under `out` (see the module docstring)."""
    rule = require_holdout(cfg, "savi eval make-set")
    es = _prepare_out(out, force)
    if n is not None and n < 1:
        raise ConfigError("--n must be at least 1")
    if questions_file is not None:
        given = read_questions_file(questions_file)
        if n is not None and n > len(given):
            raise ConfigError(f"--n {n} asks for more questions than --questions {questions_file} holds ({len(given)})")
        drawn = _from_file(cfg, Path(data_root), given[:n] if n else given)
    else:
        n = n or DEFAULT_N
        drawn = _from_model(cfg, Path(data_root), n, es.cache_db)
        if len(drawn.questions) < n:
            raise ConfigError(
                f"only {len(drawn.questions)} of {n} eval questions could be made: the held-out pool "
                f"(eval.holdout {rule.holdout:g}) ran out ({len(drawn.skipped)} video(s) skipped); "
                "lower --n or raise eval.holdout before the first build")
    if not drawn.questions:
        raise ConfigError("no eval question could be made: every drawn video was skipped")
    return _write_set(cfg, es, drawn, protocol="held-out",
                      questions_from="file" if questions_file is not None else "model")


def _write_set(cfg: BuildConfig, es: EvalSetDir, drawn: Drawn, *, protocol: Literal["held-out", "paper"],
               questions_from: Literal["model", "file", "revision"],
               questions_revision: str | None = None) -> EvalSetInfo:
    set_id, version = _ids(cfg, drawn.questions, protocol, questions_revision)
    by_type = {t: sum(q.question_type == t for q in drawn.questions) for t in QUESTION_TYPES}
    by_source: dict[str, int] = {}
    for q in drawn.questions:
        by_source[q.source] = by_source.get(q.source, 0) + 1
    info = EvalSetInfo(
        set_id=set_id, question_version=version, name=cfg.name, seed=cfg.seed, config_hash=cfg.data_hash(),
        protocol=protocol, holdout=cfg.eval.model_dump(mode="json") if cfg.eval and protocol == "held-out" else {},
        n_questions=len(drawn.questions), by_question_type=by_type,
        by_source=by_source, questions_from=questions_from, questions_revision=questions_revision,
        question_model=drawn.model, question_prompt_hash=drawn.prompt_hash, num_frames=cfg.frames.num_frames,
        resize=list(cfg.frames.resize) if cfg.frames.resize else None,
        source_roots={name: src.root for name, src in cfg.sources.items()},
        follow_symlinks=[name for name, src in cfg.sources.items() if src.follow_symlinks],
        answer_params=cfg.stages.answer.model_dump(), skipped=drawn.skipped, builder_version=BUILDER_VERSION,
        videosavi_version=__version__, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    es.write(info, drawn.questions)
    return info

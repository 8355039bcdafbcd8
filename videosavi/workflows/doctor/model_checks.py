"""Can the configured model do a build and be trained? Checked with the builder's own parts.

The model loads through `load_backend` (as `savi-build` loads it); the processor gets synthetic frames
of the configured count and size; each stage makes one real generation from the stage's own message
builder and JSON Schema, read by the stage's own parser, with up to `stages.max_attempts` seeds as
the build retries; and the LoRA targets are found on the loaded model as `savi train` finds them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from videosavi.builders.generate.call_keys import call_seed
from videosavi.builders.generate.models.base import GenerationRequest, ModelBackend
from videosavi.builders.generate.models.loader import load_backend
from videosavi.builders.generate.models.tiny import TINY_BUILDERS
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import answer_messages, parse_answer
from videosavi.builders.generate.stages.critique import critique_messages, critique_schema, parse_critique
from videosavi.builders.generate.stages.parsing import ParseError
from videosavi.builders.generate.stages.questions import parse_questions, question_messages, question_schema
from videosavi.builders.generate.stages.refine import parse_refined, refine_messages
from videosavi.builders.sources.synthetic_video import random_shapes, render_frame
from videosavi.config import BuildConfig
from videosavi.errors import ConfigError
from videosavi.schemas import Critique, CritiqueIssue
from videosavi.training.lora_targets import find_lora_targets
from videosavi.workflows.doctor.check import Check, fail, ok, skipped
from videosavi.workflows.doctor.server_checks import check_grammar, check_server

STAGES = ("question", "answer", "critique", "refine")
NATIVE_SIZE_STAND_IN = (448, 448)  # frames.resize: null keeps each video's size; check a typical one
# Inputs a later stage gets when the stage before it produced nothing parseable, so each stage is
# still checked on its own.
STAND_IN_QUESTION = "Which shape moves first, and where does it go?"
STAND_IN_ANSWER = "The red disc moves first, from the left edge to the centre."
STAND_IN_CRITIQUE = Critique(
    summary="The answer names a red disc, but the first shape to move is a blue box.",
    issues=[CritiqueIssue(statement="The red disc moves first", reason="the box starts moving earlier",
                          evidence="the blue box leaves the left edge in the first frames", severity="critical",
                          error_type="temporal_ordering")],
)


def synthetic_frames(num_frames: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of moving shapes: real-looking input without a video file."""
    height, width = size
    rng = np.random.default_rng(seed)
    shapes = random_shapes(rng, width, height)
    return np.stack([render_frame(i, width, height, shapes, (24, 24, 32), barcode=False) for i in range(num_frames)])


def frame_size(cfg: BuildConfig) -> tuple[int, int]:
    return cfg.frames.resize if cfg.frames.resize else NATIVE_SIZE_STAND_IN


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def model_fix(cfg: BuildConfig, config_label: str) -> str:
    """What to change when the model does not load, by what kind of reference it is."""
    m = cfg.model
    if m.backend == "tiny":
        return f"use a tiny model name ({', '.join(TINY_BUILDERS)}) or a checkpoint folder with --model"
    if m.backend == "openai":
        return f"set model.base_url in {config_label} to the server's /v1 root"
    path = Path(m.name_or_path).expanduser()
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            return (f"{path} holds no config.json: point --model at a saved checkpoint folder "
                    "(e.g. runs/iter1-model/merged)")
        try:
            remote = "auto_map" in json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            remote = False
        if remote:
            return ("it is a remote-code checkpoint: convert it to transformers' native class "
                    f"(run `savi model convert --model {path} --out OUT`), or serve it and use `backend: openai`")
        return f"check that {path} is a complete video-model checkpoint (weights, processor and tokenizer files)"
    if path.is_absolute() or m.name_or_path.startswith((".", "~")) or path.exists():
        return f"no checkpoint folder at {path}: check --model (or model.name_or_path in {config_label})"
    return (f"{m.name_or_path!r} is not a folder nor a hub id in the local Hugging Face cache: download it first "
            f"(`hf download {m.name_or_path}`), or check --model")


def load_model(cfg: BuildConfig, config_label: str) -> tuple[Check, ModelBackend | None]:
    if cfg.model.backend in ("tiny", "transformers"):  # the table is the report: no weight-loading bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    t0 = time.perf_counter()
    try:
        backend = load_backend(cfg.model)
    except Exception as exc:  # any failure to load is this row's finding, not a crash of the doctor
        return fail("model", f"{cfg.model.name_or_path} ({cfg.model.backend}): {_first_line(exc)}",
                    model_fix(cfg, config_label)), None
    info = backend.info
    arch = f", {info.architecture}" if info.architecture else ""
    seconds = time.perf_counter() - t0
    return ok("model", f"{info.name_or_path} ({info.backend}{arch}) loaded in {seconds:.1f} s"), backend


def _text_positions(backend: Any) -> int | None:
    config = getattr(getattr(backend, "model", None), "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "max_position_embeddings", None)


def check_processor(backend: ModelBackend, cfg: BuildConfig, frames: np.ndarray, prompts: PromptSet,
                    config_label: str) -> Check:
    """The processor takes the configured frames, and the longest reply still fits the context."""
    name = "frames"
    n, (h, w) = frames.shape[0], frames.shape[1:3]
    what = f"{n} frames of {h}x{w}" + ("" if cfg.frames.resize else " (frames.resize is null: a 448x448 stand-in)")
    request = GenerationRequest(frames=frames, messages=answer_messages(prompts, STAND_IN_QUESTION, n),
                                max_new_tokens=1)
    encode = getattr(backend, "encode", None)
    payload = getattr(backend, "payload", None)
    fix = f"lower frames.num_frames or frames.resize in {config_label}"
    try:
        if encode is None and payload is not None:  # a server: what we send it, its processor is the stages' job
            body = payload(request)
            parts = sum(len(m["content"]) for m in body["messages"] if isinstance(m.get("content"), list))
            return ok(name, f"{what} -> a request of {parts} content parts")
        if encode is None:
            return skipped(name, f"the {type(backend).__name__} backend has no processor to check")
        inputs = encode([request])
    except Exception as exc:
        return fail(name, f"the processor refused {what}: {_first_line(exc)}", fix)
    pixels = [k for k in inputs if k.startswith("pixel_values")]
    if not pixels:
        return fail(name, f"the processor returned no pixel values for {what}",
                    "use a video-capable model (docs/models.md): this processor ignores the video")
    tokens = int(inputs["input_ids"].shape[1])
    longest = max(getattr(cfg.stages, s).max_new_tokens for s in STAGES)
    limit = _text_positions(backend)
    if limit and tokens + longest > limit:
        return fail(name, f"{what} -> {tokens} prompt tokens + up to {longest} new > the model's {limit} positions",
                    fix)
    return ok(name, f"{what} -> {tokens} prompt tokens ({', '.join(pixels)})")


def _stage_fix(stage: str, cfg: BuildConfig, last_finish: str, config_label: str) -> str:
    if last_finish == "error":
        if cfg.model.backend == "openai":
            return f"check that the server at {cfg.model.base_url} serves {cfg.model.name_or_path} and answers"
        return "see the error: often GPU memory (lower model.batch_size or frames.num_frames)"
    if last_finish == "length":
        return f"raise stages.{stage}.max_new_tokens in {config_label}: the reply was cut off"
    if stage in ("question", "critique") and not cfg.model.constrained:
        return f"set model.constrained: true in {config_label} (grammar-constrained JSON)"
    return "use an instruction-tuned video model that follows the prompts (docs/models.md)"


def run_stage(backend: ModelBackend, cfg: BuildConfig, stage: str, frames: np.ndarray, messages: list[dict],
              schema: dict | None, parse: Callable[[str], Any], config_label: str,
              describe: Callable[[Any], str], note: str = "",
              replies: dict[str, list[str]] | None = None) -> tuple[Check, Any]:
    """Up to `stages.max_attempts` generations with fresh seeds, as the build retries a malformed reply; the
    texts that came back are added to `replies[stage]`."""
    params = getattr(cfg.stages, stage)
    tries = cfg.stages.max_attempts
    last, finish = "", ""
    t0 = time.perf_counter()
    for attempt in range(1, tries + 1):
        request = GenerationRequest(frames=frames, messages=messages, temperature=params.temperature,
                                    top_p=params.top_p, max_new_tokens=params.max_new_tokens, json_schema=schema,
                                    seed=call_seed(cfg.seed, 0, "doctor", stage, 0, attempt))
        [result] = backend.generate([request])
        finish = result.finish_reason
        if result.finish_reason == "stop" and replies is not None:  # a reply cut off is not the grammar's doing
            replies.setdefault(stage, []).append(result.text)
        if not result.ok:
            last = f"call error: {result.error}"
            continue
        try:
            value = parse(result.text)
        except ParseError as exc:
            last = f"{exc.reason}: {exc.detail}"
            continue
        seconds = time.perf_counter() - t0
        detail = f"parsed on try {attempt} of {tries} ({seconds:.1f} s): {describe(value)}{note}"
        return ok(f"stage {stage}", detail), value
    return fail(f"stage {stage}", f"no parseable reply in {tries} tries; last: {last}{note}",
                _stage_fix(stage, cfg, finish, config_label)), None


def _words(text: str) -> str:
    n = len(text.split())
    return f"{n} word{'' if n == 1 else 's'}"


def check_stages(backend: ModelBackend, cfg: BuildConfig, frames: np.ndarray, prompts: PromptSet,
                 config_label: str, replies: dict[str, list[str]] | None = None) -> list[Check]:
    """question -> answer -> critique -> refine, each fed the previous stage's parsed output (or a stand-in)."""
    n, q = frames.shape[0], cfg.questions
    rows: list[Check] = []
    row, questions = run_stage(
        backend, cfg, "question", frames, question_messages(prompts, n, q.spatial, q.temporal),
        question_schema(q.spatial, q.temporal), lambda t: parse_questions(t, q.spatial, q.temporal), config_label,
        lambda v: f"{len(v)} questions", replies=replies)
    rows.append(row)
    question = questions[0].question if questions else STAND_IN_QUESTION
    note = "" if questions else " (asked a stand-in question)"
    row, answer = run_stage(backend, cfg, "answer", frames, answer_messages(prompts, question, n), None, parse_answer,
                            config_label, _words, note)
    rows.append(row)
    answer = answer or STAND_IN_ANSWER
    note = "" if row.status == "ok" else " (critiqued a stand-in answer)"
    row, critique = run_stage(backend, cfg, "critique", frames, critique_messages(prompts, question, answer, n),
                              critique_schema(), parse_critique, config_label,
                              lambda v: f"{len(v.issues)} issue(s)", note, replies=replies)
    rows.append(row)
    note = "" if critique is not None else " (refined from a stand-in critique)"
    row, _ = run_stage(backend, cfg, "refine", frames,
                       refine_messages(prompts, question, answer, critique or STAND_IN_CRITIQUE, n), None,
                       parse_refined, config_label, _words, note)
    rows.append(row)
    return rows


def check_lora(backend: ModelBackend, spec: str) -> Check:
    """The targets `savi train --lora-targets SPEC` would put LoRA on, found on the loaded model."""
    model = getattr(backend, "model", None)
    if model is None:
        return skipped("LoRA targets", "skipped: remote model (`savi train` checks the model it loads)")
    try:
        return ok("LoRA targets", find_lora_targets(model, spec).summary())
    except ConfigError as exc:
        return fail("LoRA targets", str(exc),
                    "pass --lora-targets all-linear (the paper's), attention, or a regex that matches whole "
                    "module names, e.g. '.*language_model.*\\.mlp\\..*'")


def check_model(cfg: BuildConfig, lora_targets: str, config_label: str,
                progress: Callable[[str], None] | None = None) -> list[Check]:
    """Model, frames, the four stages and LoRA targets; rows after a failed load are skipped."""
    say = progress or (lambda _msg: None)
    say(f"loading {cfg.model.name_or_path}")
    row, backend = load_model(cfg, config_label)
    later = ["frames", *(f"stage {s}" for s in STAGES), "LoRA targets"]
    if backend is None:
        return [row, *(skipped(name, "needs the model") for name in later)]
    try:
        prompts = PromptSet.load()
        frames = synthetic_frames(cfg.frames.num_frames, frame_size(cfg), seed=cfg.seed)
        rows = [row, *filter(None, [check_server(backend)])]
        say("encoding frames")
        rows.append(check_processor(backend, cfg, frames, prompts, config_label))
        say("one generation per stage")
        replies: dict[str, list[str]] = {}
        rows += check_stages(backend, cfg, frames, prompts, config_label, replies)
        rows += filter(None, [check_grammar(backend, cfg, replies, frames, prompts)])
        rows.append(check_lora(backend, lora_targets))
        return rows
    finally:
        backend.close()

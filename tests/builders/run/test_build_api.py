"""Stages and executors as objects (issue 16): the stage objects are exactly what drove a build's rows,
executors come from a registry, `videosavi.run_build(BuildConfig, ...)` gives the rows of the command
line, and a random-weight model is used only when something asks for it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import videosavi
from tests.helpers.build_helpers import SMALL_LIMIT, rows
from videosavi.builders.generate.call_keys import call_key, call_seed
from videosavi.builders.generate.pipeline_items import DecodedVideo, PipelineContext, VideoResult
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages import Stage, StageOutcome, WorkItem, pair_stages
from videosavi.builders.run.executors.base import Executor, get_executor, register_executor
from videosavi.builders.run.executors.local import LocalExecutor
from videosavi.builders.run.runner import BuildOptions, BuildResult, check_random_weights, generation_json
from videosavi.cli import app
from videosavi.config import BuildConfig, load_config
from videosavi.curation import load_curation_config
from videosavi.errors import ConfigError
from videosavi.run_dir import RunDir


def _calls(run_dir: Path) -> tuple[dict[str, Any], dict[str, tuple[str, str, str]]]:
    db = sqlite3.connect(f"file:{run_dir / 'cache.sqlite'}?mode=ro", uri=True)
    try:
        spec = json.loads(db.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()[0])
        calls = {k: (s, t, f) for k, s, t, f in db.execute("SELECT key, stage, text, finish_reason FROM calls")}
    finally:
        db.close()
    return spec, calls


def test_pair_stages_are_the_build_in_order() -> None:
    plain = load_config("demo")
    retro = load_config("demo", {"retrospective": True})
    shape = [(s.name, s.fan_out, s.schema is not None, type(s).expand is not Stage.expand)
             for s in pair_stages(_context(retro))]
    assert shape == [("describe", "video", False, False), ("question", "video", True, True),
                     ("answer", "question", False, False), ("critique", "question", True, False),
                     ("refine", "question", False, False)]
    assert [s.name for s in pair_stages(_context(plain))] == ["question", "answer", "critique", "refine"]
    assert {s.name: s.params for s in pair_stages(_context(plain))}["critique"] == \
        plain.stages.critique.model_dump()


def _context(cfg: BuildConfig, prompts: PromptSet | None = None) -> PipelineContext:
    return PipelineContext(cfg=cfg, curation=load_curation_config(cfg.curation),
                           prompts=prompts or PromptSet.load(retrospective=cfg.retrospective), iteration=1,
                           model_name="m", model_revision="r", builder_version="b",
                           generation_json=generation_json(cfg))


def test_every_row_is_what_the_stage_objects_asked_and_parsed(small_reference: Path, small_config: Path) -> None:
    """Replay each row through the stage objects: each stage's messages, sampling parameters and schema
    give a call key the build stored, and the stage's parser turns that reply into the row's field."""
    cfg = load_config(small_config)
    run = RunDir(small_reference)
    info = run.read_build_info()
    spec, calls = _calls(small_reference)
    stages = pair_stages(_context(cfg))
    videos = {v.video_uid: v for v in run.read_videos()}
    found = rows(small_reference)
    assert found
    for row in found:
        decoded = SimpleNamespace(sample=SimpleNamespace(frame_indices=row["frame_indices"]), frames=None,
                                  sha256=row["video_sha256"])
        item = WorkItem(DecodedVideo(0, videos[row["video_uid"]], decoded), VideoResult(0, videos[row["video_uid"]],
                                                                                         "done"))
        for stage in stages:
            messages = stage.messages(item)
            outcome = None
            for attempt in range(1, cfg.stages.max_attempts + 1):
                key = call_key(model=spec["model"], revision=spec["model_revision"],
                               prompt_hash=info.prompts[stage.name],
                               video_sha256=row["video_sha256"], frame_indices=row["frame_indices"],
                               messages=messages, params=stage.params, json_schema=stage.schema,
                               seed=call_seed(cfg.seed, 1, row["video_uid"], stage.name, item.slot, attempt))
                if key in calls:
                    try:
                        value = stage.parse(calls[key][1], calls[key][2], attempt == cfg.stages.max_attempts)
                    except ValueError:
                        continue
                    outcome = StageOutcome(value=value, text=calls[key][1], finish_reason=calls[key][2])
                    break
            assert outcome is not None, f"{row['pair_id']}: no stored {stage.name} call matches the stage object"
            item.outputs[stage.name] = outcome
            item.messages[stage.name] = messages
            if stage.name == "question":
                kept = [q.question for q in outcome.value[0]]
                assert row["question"] in kept
                slot = kept.index(row["question"])
                item = item.for_question(slot, outcome.value[0][slot])
        assert item.value("answer") == row["rejected"] and item.value("refine") == row["chosen"]
        assert item.value("critique").summary == row["critique"]
        assert _without_nulls(item.messages["answer"]) == _without_nulls(row["prompt"])  # the pair's DPO prompt


def _without_nulls(value: Any) -> Any:
    """Messages as stored in Arrow (a struct's absent fields are null) compare to messages as built."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# --- executors and the Python entry point ------------------------------------------------------------


def test_executors_come_from_the_registry() -> None:
    assert isinstance(get_executor("local"), Executor) and get_executor("local").name == "local"
    ray = get_executor("ray", address="auto", num_shards=2)
    assert isinstance(ray, Executor) and (ray.name, ray.address, ray.num_shards) == ("ray", "auto", 2)
    with pytest.raises(ConfigError, match="unknown executor 'slurm': use one of local, ray"):
        get_executor("slurm")
    res = CliRunner().invoke(app, ["build", "--executor", "slurm", "--config", "demo"])
    assert res.exit_code == 2 and "unknown executor 'slurm'" in res.output


@dataclass
class RecordingExecutor:
    """An executor of our own, registered by name: it runs the local one and keeps what it was given."""

    name: str = "recording"
    seen: list[BuildOptions] = field(default_factory=list)

    def run(self, opts: BuildOptions) -> BuildResult:
        self.seen.append(opts)
        return LocalExecutor().run(opts)


def test_run_build_takes_a_build_config_and_gives_the_rows_of_the_cli(
        small_reference: Path, small_config: Path, demo_root: Path, tmp_path: Path) -> None:
    recorder = RecordingExecutor()
    register_executor("recording", lambda: recorder)
    cfg = load_config(small_config)
    result = videosavi.run_build(cfg, out=tmp_path / "api", data_root=demo_root, limit_videos=SMALL_LIMIT,
                                 executor="recording")
    assert rows(result.run_dir) == rows(small_reference)
    [opts] = recorder.seen
    assert opts.config is cfg and opts.overrides == {}
    # a changed config is a new object, not a dict of overrides
    changed = cfg.model_copy(update={"seed": cfg.seed + 1})
    assert changed.data_hash() != cfg.data_hash()
    with pytest.raises(ConfigError, match="takes a BuildConfig"):
        videosavi.run_build(str(small_config))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="overrides apply to a config read from a file"):
        LocalExecutor().run(BuildOptions(config=cfg, overrides={"seed": 1}, out=tmp_path / "x"))
    assert {"run_build", "BuildConfig", "Stage", "Executor", "TrainingOptions", "load_revision"} <= set(
        videosavi.__all__)


# --- random weights only when asked for ---------------------------------------------------------------


def _no_model_config(tmp_path: Path) -> Path:
    raw = load_config("demo").model_dump(mode="json")
    raw.pop("model")
    path = tmp_path / "no-model.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_a_config_without_a_model_is_refused_unless_asked(tmp_path: Path, demo_root: Path) -> None:
    path = _no_model_config(tmp_path)
    cfg = load_config(path)
    assert cfg.model.backend == "tiny"
    with pytest.raises(ConfigError, match="--allow-random-weights"):
        check_random_weights(cfg, None, allow=False)
    check_random_weights(cfg, None, allow=True)
    check_random_weights(cfg, "tiny-qwen2-vl", allow=False)  # --model tiny-* asks for it
    check_random_weights(load_config("demo"), None, allow=False)  # the demo config names it
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["build", "-c", str(path), "--data-root", str(demo_root), "-o", str(out),
                                   "--no-progress"])
    assert res.exit_code == 2 and "names no model" in res.output and "--allow-random-weights" in res.output
    assert not out.exists()  # refused before anything was written

"""A stage of the user's own, run by the pipeline that runs the build's (`VideoPipeline(runner, ctx, stages=[...])`,
issue 25): one `Stage` subclass holds its prompt template, sampling defaults, parser and what it keeps, and
the pipeline, the stage runner and the call cache treat it as they treat the paper's stages."""

from __future__ import annotations

from pathlib import Path

from videosavi.builders.decode.frames import decode_frames
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.generate.models.loader import load_backend
from videosavi.builders.generate.pipeline_items import DecodedVideo, PipelineContext
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stage_runner import CallContext, StageRunner
from videosavi.builders.generate.stages import STAGES, Stage, StageOutcome, WorkItem, pair_stages, stage_classes
from videosavi.builders.generate.stages.base import video_user_message
from videosavi.builders.generate.stages.parsing import ParseError
from videosavi.builders.generate.video_pipeline import VideoPipeline
from videosavi.builders.run.runner import generation_json
from videosavi.builders.sources.sampler import sample_videos
from videosavi.config import SamplingParams, load_config
from videosavi.curation import load_curation_config

CHECK_TEMPLATE = "Question: ${question}\nAnswer: ${answer}\nDoes the answer name something visible? Say yes or no."


class SpatialCheck(Stage):
    """Asks the model about each answer and lets only spatial questions go on to the critique."""

    name = "spatial_check"
    fan_out = "question"
    templates = ("spatial_check",)
    defaults = SamplingParams(temperature=0.5, top_p=0.9, max_new_tokens=6)
    optional = True

    def messages(self, item: WorkItem) -> list[dict]:
        return video_user_message(self.ctx.prompts.render(self.name, question=item.question_text,
                                                          answer=item.value("answer")))

    def parse(self, text: str, finish_reason: str, last_attempt: bool) -> str:
        if not text and not last_attempt:
            raise ParseError("empty", "no reply")
        return text

    def keep(self, item: WorkItem, outcome: StageOutcome) -> bool:
        assert item.question is not None
        if item.question.question_type != "spatial":
            item.result.filtered["not_spatial"] += 1
            return False
        return True


def test_a_user_defined_stage_runs_between_the_papers_stages(demo_root: Path, tmp_path: Path) -> None:
    cfg = load_config("demo", {"sources": {"vidal": {"quota": 0}, "webvid": {"quota": 0}, "star": {"quota": 2}}})
    prompts = PromptSet({**PromptSet.load().templates, "spatial_check": CHECK_TEMPLATE})
    ctx = PipelineContext(cfg=cfg, curation=load_curation_config(cfg.curation), prompts=prompts, iteration=1,
                          model_name="tiny", model_revision="r", builder_version="b",
                          generation_json=generation_json(cfg))
    backend = load_backend(cfg.model)
    runner = StageRunner(backend, CallCache(tmp_path / "cache.sqlite"), CallContext(
        model="tiny", revision="r", prompt_hashes=prompts.hashes, base_seed=cfg.seed, iteration=1,
        max_attempts=cfg.stages.max_attempts), batch_size=8)
    build = pair_stages(ctx)
    assert [s.name for s in build] == ["question", "answer", "critique", "refine"]
    stages = [*build[:2], SpatialCheck(ctx), *build[2:]]

    videos = [v for v in sample_videos(cfg, demo_root).videos if v.available]
    root = demo_root / cfg.sources["star"].root
    window = [DecodedVideo(i, v, decode_frames(root / v.video_path, cfg.frames.num_frames,
                                               resize=cfg.frames.resize)) for i, v in enumerate(videos)]
    try:
        results = VideoPipeline(runner, ctx, stages=stages).process(window)
    finally:
        backend.close()

    pairs = [p for r in results for p in r.pairs]
    asked = sum(r.questions for r in results)
    assert len(window) == 2 and asked >= 2
    assert pairs and {p.question_type for p in pairs} == {"spatial"}  # the stage's `keep` decided
    not_spatial = sum(r.filtered["not_spatial"] for r in results)
    assert not_spatial >= 1 and runner.counts["spatial_check"].calls >= not_spatial
    # its calls went through the cache under its own name, with its defaults and its template's hash
    stored = _calls(tmp_path / "cache.sqlite")
    assert stored.count("spatial_check") == runner.counts["spatial_check"].calls
    assert SpatialCheck.sampling(cfg) == SpatialCheck.defaults and not SpatialCheck.enabled(cfg)
    # a config section for it sets its sampling (and turns on an optional stage), as for the build's stages
    tuned = load_config("demo", {"stages": {"spatial_check": {"temperature": 0.1, "max_new_tokens": 4}}})
    assert SpatialCheck.sampling(tuned).max_new_tokens == 4 and SpatialCheck.enabled(tuned)
    assert SpatialCheck not in STAGES and [s.name for s in stage_classes(tuned)] == [s.name for s in build]


def _calls(db: Path) -> list[str]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return [stage for (stage,) in con.execute("SELECT stage FROM calls")]
    finally:
        con.close()

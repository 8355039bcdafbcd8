"""End-to-end builds on demo videos with the tiny random-weight models (issue 3).

Each build runs the real pipeline: sampling from the three real manifest formats, decoding in the
worker pool, the tiny model loaded through the Auto classes, constrained decoding, validation,
curation, shards. Fault and crash/resume cases live in test_faults.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import rows
from tests.helpers.factories import read_pairs
from videosavi.builders.run.runner import BuildOptions, run_build
from videosavi.cli import app
from videosavi.curation import reasons
from videosavi.run_dir import RunDir
from videosavi.schemas import PreferencePair

QUESTION_LEVEL = {reasons.DUPLICATE_QUESTION, reasons.NEAR_DUPLICATE_QUESTION}


@pytest.fixture(scope="session")
def reference_build(demo_root: Path, tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> RunDir:
    out = tmp_path_factory.mktemp("ref") / "iter1"
    run_build(BuildOptions(iteration=1, config="demo", data_root=demo_root, out=out, limit_videos=4))
    return RunDir(out)


def test_build_writes_valid_shards_and_consistent_counts(reference_build: RunDir) -> None:
    run = reference_build
    info = run.read_build_info()
    pairs = read_pairs(run.path)  # validates every row against the pydantic model
    assert pairs and all(isinstance(p, PreferencePair) for p in pairs)
    assert [p.name for p in run.shard_paths()] == [Path(s).name for s in info.shards]
    n = len(info.shards)
    assert all(Path(s).name.endswith(f"-of-{n:05d}.parquet") for s in info.shards)
    c = info.counts
    assert c.videos_sampled == 4 and c.videos_done + c.videos_skipped == 4
    assert c.pairs == len(pairs)
    assert c.pairs_by_source == dict(Counter(p.source for p in pairs))
    assert c.pairs_by_question_type == dict(Counter(p.question_type for p in pairs))
    assert c.pairs_by_severity == dict(Counter(p.severity for p in pairs))
    # every kept question ends as exactly one of: a pair, a no-pair reason, a curation drop
    pair_level_drops = sum(v for k, v in c.filtered.items() if k not in QUESTION_LEVEL)
    assert c.questions == c.pairs + sum(c.no_pair_reasons.values()) + pair_level_drops
    assert c.stages["question"].calls >= c.videos_done and c.stages["answer"].calls >= c.questions
    assert info.model.backend == "tiny" and info.model.revision.startswith("local:")
    assert set(info.prompts) == {"question", "answer", "critique", "refine"}
    assert info.timings["total_s"] > 0 and info.timings["model_s"] > 0
    assert run.videos.exists() and run.skipped.exists() and run.quarantine.exists()
    assert sorted(run.read_prompts()) == ["answer", "critique", "question", "refine"]
    # videos.parquet gains what decoding learnt of each built video; the others stay as sampled
    videos = {v.video_uid: v for v in run.read_videos()}
    for p in pairs:
        v = videos[p.video_uid]
        assert v.num_frames == p.video_num_frames and v.fps and v.duration == pytest.approx(v.num_frames / v.fps)
    assert sum(v.num_frames is not None for v in videos.values()) == c.videos_done


def test_three_spatial_three_temporal_questions_per_video(reference_build: RunDir) -> None:
    info = reference_build.read_build_info()
    dupes = sum(v for k, v in info.counts.filtered.items() if k in QUESTION_LEVEL)
    assert info.counts.questions + dupes == 6 * info.counts.videos_done
    per_video: dict[str, Counter] = {}
    for p in read_pairs(reference_build.path):
        per_video.setdefault(p.video_uid, Counter())[p.question_type] += 1
        assert p.iteration == 1 and p.model == "tiny-qwen2-vl"
        assert len(p.frame_indices) == 8 and p.video_sha256 == next(
            v.sha256 for v in reference_build.read_videos() if v.video_uid == p.video_uid)
    assert per_video and all(c["spatial"] <= 3 and c["temporal"] <= 3 for c in per_video.values())
    questions = [p.question for p in read_pairs(reference_build.path)]
    assert len(questions) == len(set(questions))


def test_rerun_resumes_without_model_calls(reference_build: RunDir, demo_root: Path) -> None:
    before = rows(reference_build.path)
    counts = reference_build.read_build_info().counts.stages
    result = run_build(BuildOptions(iteration=1, config="demo", data_root=demo_root, out=reference_build.path,
                                    limit_videos=4))
    assert rows(reference_build.path) == before
    # build.json counts every process's calls: the re-run added none (and no cache hit: no video was redone)
    assert result.info.counts.stages == counts


def test_other_setup_is_refused_unless_forced(reference_build: RunDir, demo_root: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    res = cli.invoke(app, ["build", "--config", "demo", "--data-root", str(demo_root), "--out",
                           str(reference_build.path), "--limit-videos", "4", "--iteration", "2", "--no-progress"])
    assert res.exit_code == 2
    assert "different setup" in res.output and "iteration" in res.output and "--overwrite" in res.output


def test_second_architecture_internvl(demo_root: Path, tmp_path: Path) -> None:
    result = run_build(BuildOptions(iteration=1, config="demo", data_root=demo_root, out=tmp_path / "ivl",
                                    model="tiny-internvl", limit_videos=2))
    pairs = read_pairs(result.run_dir)
    assert result.info.model.architecture == "internvl"
    assert pairs and {p.model for p in pairs} == {"tiny-internvl"}
    assert result.info.counts.questions + sum(
        v for k, v in result.info.counts.filtered.items() if k in QUESTION_LEVEL) == 12


def test_malformed_output_is_quarantined_with_raw_text(demo_root: Path, tmp_path: Path) -> None:
    # Without grammar constraints the random-weight model writes text that is not JSON: every question
    # call fails to parse, is retried, and ends in quarantine with its raw text; no pair is invented.
    result = run_build(BuildOptions(iteration=1, config="demo", data_root=demo_root, out=tmp_path / "raw",
                                    limit_videos=2, overrides={"model": {"constrained": False}}))
    run = RunDir(result.run_dir)
    quarantined = run.read_quarantine()
    assert len(quarantined) == 2 and {q.stage for q in quarantined} == {"question"}
    assert all(q.attempts == 3 and q.raw_text and q.reason.split(":")[0] in
               {"no_json", "invalid_json", "schema_mismatch"} for q in quarantined)
    assert result.info.counts.pairs == 0 and result.info.counts.no_pair_reasons == {"question_quarantined": 2}
    assert result.info.counts.stages["question"].retries == 4 and result.info.counts.stages["question"].quarantined == 2


@pytest.mark.slow
def test_two_shards_merged_equal_one_run(reference_build: RunDir, demo_root: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    dirs = []
    for i in range(2):
        out = tmp_path / f"shard{i}"
        res = cli.invoke(app, ["build", "--config", "demo", "--data-root", str(demo_root), "--out", str(out),
                               "--limit-videos", "4", "--num-shards", "2", "--shard-index", str(i), "--no-progress"])
        assert res.exit_code == 0, res.output
        dirs.append(str(out))
        assert RunDir(out).read_build_info().counts.videos_sampled == 2
    res = cli.invoke(app, ["merge-shards", *dirs, "--out", str(tmp_path / "merged")])
    assert res.exit_code == 0, res.output
    merged = RunDir(tmp_path / "merged")
    assert rows(merged.path) == rows(reference_build.path)
    assert merged.read_videos() == reference_build.read_videos()  # each shard's decoded metadata, combined
    ref_counts = reference_build.read_build_info().counts
    got = merged.read_build_info().counts
    assert (got.pairs, got.questions, got.videos_done, got.pairs_by_source) == (
        ref_counts.pairs, ref_counts.questions, ref_counts.videos_done, ref_counts.pairs_by_source)
    res = cli.invoke(app, ["merge-shards", dirs[0], "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "shards 0..1" in res.output


def test_build_help_lists_the_options() -> None:
    res = CliRunner().invoke(app, ["build", "--help"])
    for option in ("--iteration", "--config", "--model", "--out", "--limit-videos", "--num-shards",
                   "--shard-index", "--overwrite", "--dataset", "--executor"):
        assert option in res.output

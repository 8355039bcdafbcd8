"""ISR-DPO's self-retrospective context: two real iterations of a small retrospective build (demo
videos, the tiny Qwen2-VL), checked through the call cache each build stored, plus the ways a
retrospective build refuses bad input before any model is loaded.

The checks recompute a call's key (model, revision, template hash, video, frames, rendered messages,
sampling params, seed) from the rows and look it up in the run's cache: a key is only there if that
exact prompt was sent, so a hit proves what the model was shown.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import rows_by_pair_id, small_options, write_small_config
from tests.helpers.factories import make_pairs, write_run_dir
from videosavi.builders.generate.call_keys import call_key, call_seed
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages import stage_params
from videosavi.builders.generate.stages.critique import critique_messages, critique_schema
from videosavi.builders.generate.stages.describe import describe_messages
from videosavi.builders.run.retrospective import previous_from_run_dir, resolve_previous
from videosavi.builders.run.runner import BuildOptions, run_build
from videosavi.cli import app
from videosavi.config import BuildConfig, load_config
from videosavi.errors import ConfigError
from videosavi.run_dir import RunDir
from videosavi.workflows.loop import default_build

RETRO = {"retrospective": True, "stages": {"describe": {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 48}}}


@pytest.fixture(scope="module")
def retro_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_config(tmp_path_factory.mktemp("retro-config") / "retro.yaml", RETRO)


@pytest.fixture(scope="module")
def two_iterations(retro_config: Path, demo_root: Path, tmp_path_factory: pytest.TempPathFactory,
                   videosavi_cache: str) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("retro")
    it1 = run_build(small_options(retro_config, demo_root, base / "iter1"))
    opts = small_options(retro_config, demo_root, base / "iter2")
    opts.iteration, opts.previous = 2, str(it1.run_dir)
    it2 = run_build(opts)
    return it1.run_dir, it2.run_dir


def _cache(run_dir: Path) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """(the run's spec, key -> (stage, text) of every stored call)."""
    db = sqlite3.connect(f"file:{run_dir / 'cache.sqlite'}?mode=ro", uri=True)
    try:
        spec = json.loads(db.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()[0])
        calls = {k: (stage, text) for k, stage, text in db.execute("SELECT key, stage, text FROM calls")}
    finally:
        db.close()
    return spec, calls


def _keys(run_dir: Path, cfg: BuildConfig, iteration: int, stage: str, row: dict[str, Any], messages: list[dict],
          slots: range, json_schema: dict | None = None) -> set[str]:
    """The keys this call would have on any of its slots and attempts."""
    spec, _ = _cache(run_dir)
    info = RunDir(run_dir).read_build_info()
    params = stage_params(cfg, stage).model_dump(exclude={"model"})
    return {
        call_key(model=spec["model"], revision=spec["model_revision"], prompt_hash=info.prompts[stage],
                 video_sha256=row["video_sha256"], frame_indices=row["frame_indices"], messages=messages,
                 params=params, json_schema=json_schema,
                 seed=call_seed(cfg.seed, iteration, row["video_uid"], stage, slot, attempt))
        for slot in slots for attempt in range(1, cfg.stages.max_attempts + 1)
    }


def _by_video(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in RunDir(run_dir).read_pairs_table().to_pylist():
        out.setdefault(row["video_uid"], []).append(row)
    return out


def test_iteration_2_revises_iteration_1s_description_and_its_critic_reads_its_own(
        two_iterations: tuple[Path, Path], retro_config: Path) -> None:
    it1, it2 = two_iterations
    cfg = load_config(retro_config)
    prompts = PromptSet.load(retrospective=True)
    first, second = _by_video(it1), _by_video(it2)
    assert first and set(second) <= set(first)
    _, calls1 = _cache(it1)
    _, calls2 = _cache(it2)
    questions = range(cfg.questions.spatial + cfg.questions.temporal)
    for uid, rows in second.items():
        row, previous = rows[0], first[uid][0]["description"]
        assert previous and row["description"]
        assert {r["description"] for r in rows} == {row["description"]}  # one description per video
        n = len(row["frame_indices"])
        # iteration 1 described from scratch, and that reply is what its rows store
        fresh = _keys(it1, cfg, 1, "describe", first[uid][0], describe_messages(prompts, n), range(1))
        assert [calls1[k][1].strip() for k in fresh if k in calls1] == [previous]
        # iteration 2 was shown iteration 1's description, and never asked without it
        revising = _keys(it2, cfg, 2, "describe", row, describe_messages(prompts, n, previous), range(1))
        assert [calls2[k][1].strip() for k in revising if k in calls2] == [row["description"]]
        assert not _keys(it2, cfg, 2, "describe", row, describe_messages(prompts, n), range(1)) & set(calls2)
        # each pair's critique carried this iteration's description before the critique text
        for r in rows:
            shown = critique_messages(prompts, r["question"], r["rejected"], n, description=r["description"])
            assert _keys(it2, cfg, 2, "critique", r, shown, questions, critique_schema()) & set(calls2), r["pair_id"]
            plain = critique_messages(prompts, r["question"], r["rejected"], n)
            assert not _keys(it2, cfg, 2, "critique", r, plain, questions, critique_schema()) & set(calls2)


def test_build_json_records_where_the_descriptions_came_from(two_iterations: tuple[Path, Path],
                                                             retro_config: Path) -> None:
    it1, it2 = two_iterations
    one, two = RunDir(it1).read_build_info(), RunDir(it2).read_build_info()
    assert one.retrospective is not None and one.retrospective.previous is None
    assert one.retrospective.videos_described == one.counts.videos_done and one.retrospective.videos_with_previous == 0
    # named by its folder and iteration: build.json is published, the local path above the folder is not
    assert two.retrospective is not None and two.retrospective.previous == f"run directory {it1.name} (iteration 1)"
    assert str(it1.parent) not in RunDir(it2).build_json.read_text(encoding="utf-8")
    assert two.retrospective.previous_descriptions == len(_by_video(it1))
    assert two.retrospective.videos_with_previous == len(_by_video(it1))  # the same videos, all described before
    assert two.counts.stages["describe"].calls >= two.counts.videos_done
    # the describe stage's templates are part of these builds' prompts and config, not of plain ones
    assert set(one.prompts) >= {"describe", "describe_previous", "critique_context"}
    assert one.prompt_version == PromptSet.load(retrospective=True).version != PromptSet.load().version
    assert load_config(retro_config).data_hash() != load_config(retro_config, {"retrospective": False}).data_hash()
    assert (RunDir(it1).path / "prompts" / "describe.txt").is_file()


def test_the_card_says_how_the_descriptions_were_made(two_iterations: tuple[Path, Path], tmp_path: Path) -> None:
    from videosavi.hub.revision_files import assemble_revision
    from videosavi.hub.validate import validate_run_dir

    it1, it2 = two_iterations
    for run, tag in ((it1, "iter1"), (it2, "iter2")):
        assemble_revision(validate_run_dir(run), tmp_path / tag, repo="org/x", tag=tag)
    one, two = ((tmp_path / tag / "README.md").read_text(encoding="utf-8") for tag in ("iter1", "iter2"))
    assert "**describe** stage" in one and "| previous descriptions from | none (first iteration) |" in one
    revised = len(_by_video(it1))
    assert f"| previous descriptions from | `run directory {it1.name} (iteration 1)` |" in two
    assert f"| of those, revised from a previous description | {revised} |" in two
    plain = write_run_dir(tmp_path / "plain", make_pairs(2)).path
    assemble_revision(validate_run_dir(plain), tmp_path / "plain-card", repo="org/x", tag="iter1")
    assert "**describe** stage" not in (tmp_path / "plain-card" / "README.md").read_text(encoding="utf-8")


def test_a_rerun_of_iteration_2_answers_every_call_from_its_cache(two_iterations: tuple[Path, Path],
                                                                   retro_config: Path, demo_root: Path,
                                                                   tmp_path: Path) -> None:
    import shutil

    it1, it2 = two_iterations
    copy = tmp_path / "iter2"
    shutil.copytree(it2, copy)
    db = sqlite3.connect(copy / "cache.sqlite")
    db.execute("DELETE FROM videos")  # forget which videos are finished: all of them are built again
    db.commit()
    db.close()
    opts = small_options(retro_config, demo_root, copy)
    opts.iteration, opts.previous = 2, str(it1)
    res = run_build(opts)
    stages = res.info.counts.stages
    assert stages["describe"].cached >= res.info.counts.videos_done
    # build.json counts calls over every process of the run: the rerun added none (the describe call key
    # included the previous description, so every call was found in the cache)
    first = RunDir(it2).read_build_info().counts.stages
    assert {k: s.calls for k, s in stages.items()} == {k: s.calls for k, s in first.items()}
    assert rows_by_pair_id(copy) == rows_by_pair_id(it2)


def test_previous_from_a_published_revision_equals_the_run_directory(two_iterations: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    from videosavi.hub.publish import publish_run
    from videosavi.training.previous_revision import previous_from_revision

    it1, _ = two_iterations
    store = tmp_path / "store"
    res = publish_run(it1, "org/retro", store=store)
    published = previous_from_revision(f"org/retro@{res.tag}", store=store)
    assert published.descriptions == previous_from_run_dir(it1).descriptions
    assert published.label == f"org/retro@{res.tag} ({res.commit_sha[:12]})"
    assert published.fingerprint == previous_from_run_dir(it1).fingerprint


# --- refused before any model is loaded -------------------------------------------------------------------------


def test_retrospective_iteration_2_without_previous_is_refused(retro_config: Path, demo_root: Path,
                                                               tmp_path: Path) -> None:
    opts = BuildOptions(iteration=2, config=retro_config, data_root=demo_root, out=tmp_path / "x")
    with pytest.raises(ConfigError, match="needs the previous iteration's data"):
        run_build(opts)
    assert not (tmp_path / "x").exists()


def test_previous_without_descriptions_or_without_retrospective_is_refused(small_config: Path, retro_config: Path,
                                                                          demo_root: Path, tmp_path: Path) -> None:
    plain_run = write_run_dir(tmp_path / "plain", make_pairs(n_videos=2, per_video=2))
    with pytest.raises(ConfigError, match="holds no video descriptions"):
        run_build(BuildOptions(iteration=2, config=retro_config, data_root=demo_root, out=tmp_path / "a",
                               previous=str(plain_run.path)))
    with pytest.raises(ConfigError, match="read by retrospective builds only"):
        run_build(BuildOptions(iteration=2, config=small_config, data_root=demo_root, out=tmp_path / "b",
                               previous=str(plain_run.path)))
    with pytest.raises(ConfigError, match="no such run directory"):
        resolve_previous(retrospective=True, iteration=2, previous=str(tmp_path / "nowhere"), descriptions=None)
    assert resolve_previous(retrospective=True, iteration=1, previous=None, descriptions=None) is None


def test_cli_previous_must_be_a_run_dir_or_a_revision(retro_config: Path, demo_root: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["build", "-i", "2", "-c", str(retro_config), "--data-root", str(demo_root),
                                   "-o", str(tmp_path / "o"), "--previous", "not-a-repo", "--no-progress"])
    assert res.exit_code == 2 and "ORG/NAME@REV" in res.output


def test_loop_builds_a_retrospective_iteration_from_the_previous_run_dir(retro_config: Path, demo_root: Path,
                                                                         tmp_path: Path) -> None:
    build = default_build(retro_config, demo_root, limit_videos=1)
    with pytest.raises(ConfigError, match=f"{tmp_path / 'iter1'}: no such run directory"):
        build(2, "tiny-qwen2-vl", tmp_path / "iter2")

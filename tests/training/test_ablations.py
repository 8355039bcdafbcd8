"""The paper's ablations as configs and flags (issue 24): `--question-type` (Table 7), `--fraction` with a
seeded stratified subset (Figure 2), configs/experiments/ (Table 8's single-source builds, extending the
paper's config), and an external critic (Table 5: `stages.critique.model`, recorded in every row's
`generation` and in the dataset card)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.fake_openai import FakeServer, completion, model_reply
from videosavi.cli import app
from videosavi.config import load_config
from videosavi.errors import ConfigError, TrainingDataError
from videosavi.training.subset import quotas, select_pairs, stratified_subset

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "configs" / "experiments"


# --- the subset -------------------------------------------------------------------------------------------


def _rows(n: int = 120) -> tuple[list[str], list[str], list[str]]:
    sources = ["star" if i % 4 < 2 else ("vidal" if i % 4 == 2 else "webvid") for i in range(n)]  # 2:1:1
    types = ["spatial" if (i // 4) % 2 == 0 else "temporal" for i in range(n)]  # 1:1 within each source
    return types, sources, [f"pair-{i:04d}" for i in range(n)]


def test_quotas_keep_each_group_share_and_the_rounded_total() -> None:
    assert quotas({"a": 10, "b": 5, "c": 5}, 0.5) == {"a": 5, "b": 3, "c": 2}  # 2.5 + 2.5 -> one rounds up
    assert sum(quotas({"a": 7, "b": 7, "c": 7}, 1 / 3).values()) == 7
    assert quotas({"a": 3}, 1.0) == {"a": 3}


def test_the_subset_is_stratified_seeded_and_independent_of_row_order() -> None:
    types, sources, ids = _rows()
    strata = [f"{s}/{t}" for s, t in zip(sources, types, strict=True)]
    kept = stratified_subset(strata, ids, 0.25, seed=42)
    assert len(kept) == 30 and kept == sorted(kept)
    # the mix is kept: 7.5 of each STAR group, 3.75 of the others, the largest remainders rounding up
    assert Counter(strata[i] for i in kept) == {"star/spatial": 7, "star/temporal": 7, "vidal/spatial": 4,
                                                "vidal/temporal": 4, "webvid/spatial": 4, "webvid/temporal": 4}
    assert stratified_subset(strata, ids, 0.25, seed=42) == kept  # seeded
    assert stratified_subset(strata, ids, 0.25, seed=7) != kept
    order = list(reversed(range(len(ids))))  # the same rows in another order keep the same pairs
    again = stratified_subset([strata[i] for i in order], [ids[i] for i in order], 0.25, seed=42)
    assert {ids[order[i]] for i in again} == {ids[i] for i in kept}
    with pytest.raises(ValueError, match="fraction"):
        stratified_subset(strata, ids, 0.0, seed=1)


def test_one_question_type_then_a_share_of_it() -> None:
    types, sources, ids = _rows()
    picked, sel = select_pairs(types, sources, ids, question_type="spatial", fraction=0.5, seed=3)
    assert {types[i] for i in picked} == {"spatial"} and len(picked) == 30
    assert sel.to_dict()["by_stratum"] == {"star/spatial": [15, 30], "vidal/spatial": [8, 15],
                                           "webvid/spatial": [7, 15]}
    assert (sel.rows_in_revision, sel.rows_selected) == (120, 30)
    everything, sel = select_pairs(types, sources, ids)
    assert everything == list(range(120)) and sel.rows_selected == 120


# --- savi train --question-type / --fraction ---------------------------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> Any:
    from tests.training.test_training import _publish

    return _publish(tmp_path_factory.mktemp("published-ablation"), n_videos=3, per_video=4)


def test_training_data_takes_the_type_and_share_asked_for(published: Any) -> None:
    from tests.training.test_training import REPO
    from videosavi.training.data import prepare_training_data
    from videosavi.training.revision import open_revision

    ds = open_revision(REPO, "iter1", store=published.store).dataset
    spatial = prepare_training_data(ds, published.roots, question_type="spatial", seed=1)
    ids = {r["pair_id"] for r in spatial.rows}
    assert ids == {r["pair_id"] for r in ds if r["question_type"] == "spatial"} and len(ids) == 6
    assert spatial.counts.total_rows == 6 and spatial.selection is not None
    half = prepare_training_data(ds, published.roots, fraction=0.5, seed=1)
    assert len(half.rows) == 6 and Counter(r["question_type"] for r in ds if r["pair_id"] in
                                           {x["pair_id"] for x in half.rows}) == {"spatial": 3, "temporal": 3}
    assert prepare_training_data(ds, published.roots, fraction=0.5, seed=1).rows == half.rows
    with pytest.raises(TrainingDataError, match="no spatial pairs left"):
        prepare_training_data(ds.filter(lambda r: r["question_type"] == "temporal"), published.roots,
                              question_type="spatial")


def test_savi_train_records_the_selection(published: Any, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from tests.training.test_training import REPO

    out = tmp_path / "spatial-half"
    roots = [f"{s}={p}" for s, p in published.roots.items()]
    res = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "--store",
                                   str(published.store), "--out", str(out), "--video-root", *roots,
                                   "--question-type", "spatial", "--fraction", "0.5", "--max-steps", "1",
                                   "--per-device-batch-size", "1", "--grad-accum", "1", "--dataloader-workers", "0",
                                   "--no-merge", "--no-progress"])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "train.json").read_text(encoding="utf-8"))
    assert record["selection"]["question_type"] == "spatial" and record["selection"]["rows_selected"] == 3
    assert record["counts"]["total_rows"] == 3 and record["args"]["fraction"] == 0.5
    card = ModelCard.load(out / "adapter" / "README.md")
    assert "| question_type | spatial |" in card.text and "| fraction | 0.5 |" in card.text
    bad = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "--store",
                                   str(published.store), "--out", str(tmp_path / "x"), "--video-root", *roots,
                                   "--fraction", "1.5", "--no-progress"])
    assert bad.exit_code == 2 and "--fraction must lie in (0, 1]" in bad.output
    bad = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "--out",
                                   str(tmp_path / "x"), "--question-type", "both-ish", "--no-progress"])
    assert bad.exit_code == 2


# --- configs/experiments -------------------------------------------------------------------------------------


def test_every_experiment_config_loads_and_states_its_ablation() -> None:
    paper = load_config(ROOT / "configs" / "videosavi.yaml")
    configs = {p.stem: load_config(p) for p in sorted(EXPERIMENTS.glob("*.yaml"))}
    assert set(configs) == {"star-only", "vidal-only", "webvid-only", "spatial-only", "temporal-only",
                            "critic-gpt4o"}
    for source in ("star", "vidal", "webvid"):
        cfg = configs[f"{source}-only"]
        assert list(cfg.sources) == [source] and cfg.sources[source].quota == 1000
        assert cfg.sources[source].root == paper.sources[source].root  # the rest is the paper's
        assert (cfg.frames, cfg.model, cfg.stages) == (paper.frames, paper.model, paper.stages)
        assert cfg.data_hash() != paper.data_hash()
    assert configs["spatial-only"].training.question_type == "spatial"
    assert configs["temporal-only"].training.question_type == "temporal"
    same = {k: v for k, v in paper.data_dump().items() if k != "name"}  # the same builds, trained differently
    assert {k: v for k, v in configs["spatial-only"].data_dump().items() if k != "name"} == same
    critic = configs["critic-gpt4o"].stages.critique.model
    assert critic is not None and (critic.backend, critic.name_or_path) == ("openai", "gpt-4o")
    assert configs["critic-gpt4o"].data_hash() != paper.data_hash()


def test_a_config_extends_another_and_null_removes_a_key(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("extends: demo\nname: base\nseed: 7\n", encoding="utf-8")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\nsources:\n  vidal: null\n"
                                         "  star: {quota: 1}\n", encoding="utf-8")
    demo, child = load_config("demo"), load_config(tmp_path / "child.yaml")
    assert (child.name, child.seed) == ("child", 7) and "vidal" not in child.sources
    assert child.sources["star"].quota == 1 and child.sources["star"].root == demo.sources["star"].root
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="a loop of configs"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "c.yaml")


# --- an external critic ---------------------------------------------------------------------------------------


def test_an_external_critic_answers_the_critique_stage_and_is_recorded(small_config: Path, demo_root: Path,
                                                                        tmp_path: Path) -> None:
    """The tiny model asks, answers and rewrites; a model behind the openai backend (a stand-in server that
    follows the critique schema) critiques. Every row names the critic, and so does the dataset card."""
    import yaml

    from videosavi.builders.run.runner import BuildOptions, run_build
    from videosavi.cards.dataset_card import CardInputs, render_dataset_card
    from videosavi.cards.stats import card_stats
    from videosavi.run_dir import RunDir

    seen: list[dict] = []

    def reply(n: int, body: dict, headers: dict) -> tuple[int, str, float]:
        seen.append(body)
        return 200, completion(model_reply(body)), 0.0

    server = FakeServer(reply)
    try:
        raw = yaml.safe_load(small_config.read_text(encoding="utf-8"))
        raw["stages"]["critique"]["model"] = {"backend": "openai", "name_or_path": "critic-4o",
                                              "base_url": server.url, "concurrency": 2}
        cfg = tmp_path / "critic.yaml"
        cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
        res = run_build(BuildOptions(config=cfg, data_root=demo_root, out=tmp_path / "run", limit_videos=2))
        calls = len(seen)
        again = run_build(BuildOptions(config=cfg, data_root=demo_root, out=tmp_path / "run", limit_videos=2))
    finally:
        server.close()
    pairs = RunDir(res.run_dir).read_pairs_table().to_pylist()
    assert pairs and calls >= len(pairs)
    assert all((b.get("response_format") or {}).get("json_schema", {}).get("schema", {}).get("properties", {})
               .get("issues") for b in seen)  # only critique calls went to the critic
    assert {b["model"] for b in seen} == {"critic-4o"}
    for p in pairs:
        critic = json.loads(p["generation"])["critique"]["critic"]
        assert (critic["backend"], critic["name_or_path"]) == ("openai", "critic-4o")
        assert p["critique"].startswith("replace ")  # the critic's summary, as the stand-in writes it
    assert len(seen) == calls and again.info.counts.pairs == res.info.counts.pairs  # resumed from the cache
    run = RunDir(res.run_dir)
    card = str(render_dataset_card(CardInputs(repo="org/critic", tag="iter1", info=run.read_build_info(),
                                              stats=card_stats(run.read_pairs_table()), configs=[], plots={})))
    assert "an external critic, `critic-4o`" in card and "`critic-4o` (openai backend): an external critic" in card

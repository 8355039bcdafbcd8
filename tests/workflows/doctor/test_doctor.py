"""`savi doctor`: real checks on the demo data and the tiny model, and the row + fix of each failure.

The table is printed wide (COLUMNS) so that every row is one line: `name  status  detail  fix`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from videosavi.cli import app
from videosavi.config import bundled_config, load_config
from videosavi.hub.serve import free_port
from videosavi.training.lora_targets import find_lora_targets
from videosavi.training.model_io import load_policy, resolve_model_source
from videosavi.workflows.doctor import DoctorOptions, run_doctor

CHECKS = ["config", "data root", "source star", "source vidal", "source webvid", "model", "frames",
          "stage question", "stage answer", "stage critique", "stage refine", "LoRA targets", "store"]


def _doctor(*args: str) -> tuple[int, dict[str, str]]:
    """Exit code and {check name: its table line}."""
    result = CliRunner().invoke(app, ["doctor", *args])
    rows = {}
    for line in result.output.splitlines():
        m = re.match(r"\s+(\S.*?)\s{2,}(ok|fail|skipped)\s", line)
        if m:
            rows[m.group(1)] = line
    return result.exit_code, rows


@pytest.fixture(autouse=True)
def _wide_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")


def _status(line: str) -> str:
    return re.split(r"\s{2,}", line.strip())[1]


def test_passes_on_demo_data_and_the_tiny_model(demo_root: Path, tmp_path: Path) -> None:
    code, rows = _doctor("--config", "demo", "--data-root", str(demo_root), "--store", str(tmp_path / "store"))
    assert code == 0
    assert list(rows) == CHECKS
    assert all(_status(line) in ("ok", "skipped") for line in rows.values())
    cfg = load_config("demo")
    h, w = cfg.frames.resize or (0, 0)
    assert f"{cfg.frames.num_frames} frames of {h}x{w} -> " in rows["frames"]
    tiny = find_lora_targets(load_policy(resolve_model_source(cfg.model.name_or_path))[0])
    assert f"all-linear: {tiny.count} modules" in rows["LoRA targets"]
    for stage in ("question", "answer", "critique", "refine"):
        assert f"of {cfg.stages.max_attempts}" in rows[f"stage {stage}"]
    assert not (tmp_path / "store").exists()  # checked, not created


def test_a_data_root_without_the_demo_data_fails_with_how_to_make_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, rows = _doctor("--config", "demo", "--data-root", str(empty), "--store", str(tmp_path / "store"))
    assert code == 2
    for name in ("data root", "source star", "source vidal", "source webvid"):
        assert _status(rows[name]) == "fail"
        assert f"savi demo-data --out {empty}" in rows[name]
    assert "STAR_train.json" in rows["source star"]
    assert _status(rows["model"]) == "ok"  # the other checks still ran


def test_sources_whose_videos_are_gone_fail_on_the_root(demo_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    shutil.rmtree(root / "vidal" / "videos")
    for mp4 in (root / "webvid" / "videos").rglob("*.mp4"):
        mp4.unlink()
    rows = {r.name: r for r in run_doctor(DoctorOptions(config="demo", data_root=root, store=tmp_path / "s"))}
    assert rows["source star"].status == "ok"
    assert rows["source vidal"].status == "fail" and "does not exist" in rows["source vidal"].detail
    assert rows["source webvid"].status == "fail" and "none of the first" in rows["source webvid"].detail
    assert "savi demo-data" in rows["source webvid"].fix


def test_an_unloadable_model_path_fails_the_model_row(demo_root: Path, tmp_path: Path) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    code, rows = _doctor("--config", "demo", "--data-root", str(demo_root), "--model", str(not_a_model),
                         "--store", str(tmp_path / "store"))
    assert code == 2
    assert _status(rows["model"]) == "fail"
    assert "holds no config.json" in rows["model"] and "--model" in rows["model"]
    for name in ("frames", "stage question", "stage refine", "LoRA targets"):
        assert _status(rows[name]) == "skipped" and "needs the model" in rows[name]
    assert _status(rows["source star"]) == "ok"


def test_a_lora_regex_that_matches_nothing_fails_the_lora_row(demo_root: Path, tmp_path: Path) -> None:
    code, rows = _doctor("--config", "demo", "--data-root", str(demo_root), "--lora-targets", r".*\.nothing",
                         "--store", str(tmp_path / "store"))
    assert code == 2
    line = rows["LoRA targets"]
    assert _status(line) == "fail"
    assert "matches no linear layer" in line and "model.language_model.layers.0.self_attn.q_proj" in line
    assert "pass --lora-targets all-linear" in line
    assert [n for n, ln in rows.items() if _status(ln) == "fail"] == ["LoRA targets"]


def test_publishing_targets(demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from videosavi.workflows.doctor.store_checks import check_endpoint, check_hub, check_local_store

    silent = f"http://127.0.0.1:{free_port()}"
    row = check_endpoint(silent)
    assert row.status == "fail" and "savi hub serve" in row.fix
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert check_hub().status == "skipped"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert check_local_store(blocker / "store").status == "fail"
    (tmp_path / "ok").mkdir()
    assert check_local_store(tmp_path / "ok").status == "ok"
    code, _ = _doctor("--config", "demo", "--data-root", str(demo_root), "--store", "a", "--hub")
    assert code == 2  # two places to publish to is a usage error


def test_a_served_model_skips_lora_and_names_the_cut_stage(demo_root: Path, tmp_path: Path) -> None:
    """The openai backend against a stand-in server: frames go as request parts, LoRA is skipped (remote),
    and a critique cut off at its token limit fails with the config key to raise."""
    import yaml

    from tests.helpers.fake_openai import FakeServer, completion, model_reply, request_schema

    def reply(_n: int, body: dict, _headers: dict) -> tuple[int, str, float]:
        if "issues" in request_schema(body).get("properties", {}):
            return 200, completion('{"issues": [{"statement": "the', "length"), 0.0
        return 200, completion(model_reply(body)), 0.0

    server = FakeServer(reply)
    try:
        raw = yaml.safe_load(bundled_config("demo").read_text())
        raw["model"] = {"backend": "openai", "name_or_path": "served-model", "base_url": server.url, "max_retries": 0}
        cfg = tmp_path / "served.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        rows = {r.name: r for r in run_doctor(DoctorOptions(config=cfg, data_root=demo_root, store=tmp_path / "s"))}
    finally:
        server.close()
    n = load_config("demo").frames.num_frames
    assert rows["frames"].status == "ok" and f"{n} frames" in rows["frames"].detail
    assert rows["LoRA targets"].status == "skipped" and "remote model" in rows["LoRA targets"].detail
    for stage in ("question", "answer", "refine"):
        assert rows[f"stage {stage}"].status == "ok", rows[f"stage {stage}"]
    critique = rows["stage critique"]
    assert critique.status == "fail" and "invalid_json" in critique.detail
    assert f"stages.critique.max_new_tokens in {cfg}" in critique.fix
    assert "stand-in critique" in rows["stage refine"].detail


# -- a model server: its kind and version, and the grammar of its JSON replies ---------------------------------


def _padded(text: str) -> str:
    """`text` (compact JSON) as a loose grammar lets a random model write it: whitespace between tokens and a
    raw tab inside a string."""
    return text.replace(", ", " ,\n\t  ").replace(": ", "  :\n ").replace("the clip", "the\tclip")


def _served_doctor(tmp_path: Path, demo_root: Path, owned_by: str, pad_plain: bool, pad_all: bool,
                   **model: object) -> dict:
    """Doctor rows against a stand-in server that plays `owned_by`; it pads JSON answers to a bare
    JSON Schema (`pad_plain`, vLLM's default) or to every JSON request (`pad_all`, a server ignoring its options)."""
    import yaml

    from tests.helpers.fake_openai import FakeServer, completion, model_reply, request_schema

    def reply(_n: int, body: dict, _headers: dict) -> tuple[int, str, float]:
        text = model_reply(body)
        loose = pad_all or (pad_plain and "response_format" in body)
        return 200, completion(_padded(text) if request_schema(body) and loose else text), 0.0

    server = FakeServer(reply, models=["served-model"], owned_by=owned_by, version="0.32.0")
    try:
        raw = yaml.safe_load(bundled_config("demo").read_text())
        raw["model"] = {"backend": "openai", "name_or_path": "served-model", "base_url": server.url, "max_retries": 0,
                        **model}
        cfg = tmp_path / "served.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        rows = {r.name: r for r in run_doctor(DoctorOptions(config=cfg, data_root=demo_root, store=tmp_path / "s"))}
    finally:
        server.close()
    return {"rows": rows, "bodies": server.bodies, "url": server.url}


def test_a_vllm_server_is_named_and_its_own_default_grammar_shown(demo_root: Path, tmp_path: Path) -> None:
    got = _served_doctor(tmp_path, demo_root, "vllm", pad_plain=True, pad_all=False)
    rows = got["rows"]
    assert rows["server"].status == "ok" and "vllm 0.32.0 (detected)" in rows["server"].detail
    assert "serving served-model" in rows["server"].detail and "sends no seeds" in rows["server"].detail
    grammar = rows["grammar"]
    # the build's replies are compact (it sends its grammar); a bare JSON Schema gets vLLM's padded default
    assert grammar.status == "ok" and "compact, no raw control characters" in grammar.detail, grammar
    assert "with a bare JSON Schema (other clients)" in grammar.detail and "padding whitespace" in grammar.detail
    assert "raw control characters inside strings" in grammar.detail
    assert sum("response_format" in b for b in got["bodies"]) == 1  # the one probe of the server's default


def test_padded_json_from_an_unnamed_server_fails_with_the_flags_to_fix_it(demo_root: Path, tmp_path: Path) -> None:
    got = _served_doctor(tmp_path, demo_root, "someone", pad_plain=False, pad_all=True)
    grammar = got["rows"]["grammar"]
    assert grammar.status == "fail"
    assert "padding whitespace in 2 of 2" in grammar.detail and "raw control characters" in grammar.detail
    assert "set model.server: vllm" in grammar.fix and "--constrained-json-disable-any-whitespace" in grammar.fix
    # the stages still parse: padding and control characters are read tolerantly, the schema strictly
    assert got["rows"]["stage critique"].status == "ok"


def test_a_vllm_that_ignores_the_grammar_gets_the_vllm_serve_flags(demo_root: Path, tmp_path: Path) -> None:
    rows = _served_doctor(tmp_path, demo_root, "vllm", pad_plain=True, pad_all=True)["rows"]
    assert rows["grammar"].status == "fail"
    assert "--structured-outputs-config '{\"backend\":\"xgrammar\",\"disable_any_whitespace\":true}'" \
        in rows["grammar"].fix

"""Which questions become pairs, under each curation profile, and what happens when a source runs out.

A model behind an OpenAI-compatible test server answers every call as a schema-following model would
(tests/helpers/fake_openai.py), except that a third of its critiques find no issue at all and a fifth of its
free-text replies stop at the token limit. The `paper` profile makes a pair of every question whose
refined answer differs from the initial one, whatever the critique found; `curated` drops zero-issue
critiques and cut-off answers, and both count what they dropped in build.json and on the card. A
source whose reserve runs out ends the build with exit 2 unless `--allow-shortfall`, which build.json
records and the card states; `merge-shards` says how many reserve videos it added against those asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers.build_helpers import SMALL_LIMIT, write_small_config
from tests.helpers.fake_openai import FakeServer, completion, model_reply, request_digest
from videosavi.builders.run.merge import reserve_added_message
from videosavi.builders.run.runner import BuildOptions, run_build
from videosavi.cli import app
from videosavi.curation import reasons
from videosavi.errors import ShortfallError
from videosavi.run_dir import RunDir
from videosavi.schemas import VideoRef


def _is_critique(body: dict) -> bool:
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema") or {}
    return "issues" in schema.get("properties", {})


def _is_free_text(body: dict) -> bool:
    return not (body.get("response_format") or {}).get("json_schema")


def finds_nothing(body: dict) -> bool:
    return _is_critique(body) and int(request_digest(body)[2], 16) % 3 == 0


def cut_off(body: dict) -> bool:
    return _is_free_text(body) and int(request_digest(body)[3], 16) % 5 == 0


def reply(n: int, body: dict, headers: dict) -> tuple[int, str, float]:
    if finds_nothing(body):
        return 200, completion(json.dumps({"issues": [], "summary": "The answer matches the video."})), 0.0
    return 200, completion(model_reply(body), "length" if cut_off(body) else "stop"), 0.0


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    srv = FakeServer(reply)
    yield srv
    srv.close()


def _config(path: Path, server: FakeServer, profile: str, extra: dict | None = None) -> Path:
    model = {"backend": "openai", "name_or_path": "fake-vlm", "revision": "v1", "base_url": server.url,
             "max_retries": 1, "request_timeout_s": 10, "concurrency": 4}
    write_small_config(path, {"model": model, **(extra or {})})
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["curation"] = {"profile": profile}  # the profile alone, not the demo's own switches
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def builds(server: FakeServer, demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunDir]:
    base = tmp_path_factory.mktemp("selection")
    out = {}
    for profile in ("paper", "curated"):
        cfg = _config(base / f"{profile}.yaml", server, profile)
        run_build(BuildOptions(config=cfg, data_root=demo_root, out=base / profile, limit_videos=SMALL_LIMIT))
        out[profile] = RunDir(base / profile)
    return out


def test_paper_profile_pairs_every_question_whose_refinement_differs(builds: dict[str, RunDir]) -> None:
    run = builds["paper"]
    info = run.read_build_info()
    pairs = run.read_pairs_table().to_pylist()
    questions = info.counts.questions
    assert questions == SMALL_LIMIT * 2 and len(pairs) == questions  # every question, no selection
    zero = [p for p in pairs if not p["issues"]]
    assert zero, "the server's zero-issue critiques reached no pair"
    assert all(p["severity"] == "none" for p in zero) and all(p["severity"] != "none" for p in pairs if p["issues"])
    assert all(p["chosen"] != p["rejected"] for p in zero)  # a zero-issue critique still yields a refinement
    assert reasons.NO_ISSUE not in info.counts.filtered and reasons.TRUNCATED_ANSWER not in info.counts.filtered
    assert info.counts.pairs_by_severity.get("none") == len(zero)
    # cut-off answers are among them too: the curated build of the same calls drops some (next test)
    print(f"\npaper: {len(pairs)} pairs of {questions} questions, {len(zero)} from zero-issue critiques")


def test_curated_profile_drops_zero_issue_critiques_and_cut_off_answers_and_counts_them(
        builds: dict[str, RunDir]) -> None:
    paper, curated = (builds[p].read_build_info() for p in ("paper", "curated"))
    pairs = builds["curated"].read_pairs_table().to_pylist()
    assert all(p["issues"] for p in pairs) and all(p["severity"] in ("critical", "minor") for p in pairs)
    zero_in_paper = paper.counts.pairs_by_severity.get("none", 0)
    assert curated.counts.filtered.get(reasons.NO_ISSUE) == zero_in_paper > 0  # the same calls, cached per run
    assert curated.counts.filtered.get(reasons.TRUNCATED_ANSWER, 0) > 0
    assert len(pairs) < len(builds["paper"].read_pairs_table())


def test_the_card_names_both_options_and_what_they_did(builds: dict[str, RunDir], tmp_path: Path) -> None:
    from tests.cards.test_cards import _table_rows
    from videosavi.hub.revision_files import assemble_revision
    from videosavi.hub.validate import validate_run_dir

    for profile, expected in (("paper", "kept"), ("curated", "dropped")):
        staging = tmp_path / profile
        assemble_revision(validate_run_dir(builds[profile].path), staging, repo="org/x", tag="iter1")
        readme = (staging / "README.md").read_text(encoding="utf-8")
        info = builds[profile].read_build_info()
        rows = {r[0].strip("`"): r for r in _table_rows(readme, "| option | decides on |")}
        assert set(rows) == {"drop_no_issue", "drop_truncated"}
        for key, code in (("drop_no_issue", reasons.NO_ISSUE), ("drop_truncated", reasons.TRUNCATED_ANSWER)):
            assert rows[key][2] == expected and rows[key][3] == str(info.counts.filtered.get(code, 0))
        assert f"Curation profile: **{profile}**" in readme
        severity = {r[0]: r[1] for r in _table_rows(readme, "| severity of the pair |")}
        assert ("none" in severity) is (profile == "paper")


# --- a reserve that runs out -------------------------------------------------------------------------------


def test_a_reserve_that_runs_out_is_an_error_unless_allowed(server: FakeServer, demo_root: Path,
                                                           tmp_path: Path) -> None:
    # the demo data hold 3 videos per source: a quota of 5 cannot be met, whatever the reserve
    cfg = _config(tmp_path / "short.yaml", server, "paper", {"sources": {"webvid": {"quota": 5}}})
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["build", "--config", str(cfg), "--data-root", str(demo_root), "--out", str(out),
                                   "--no-progress"])
    assert res.exit_code == 2, res.output
    line = next(ln for ln in res.output.splitlines() if "reserve ran out" in ln)
    webvid = RunDir(out).read_build_info().counts.sources["webvid"]
    assert f"webvid: {webvid.delivered_pairs} of 10 pairs (shortfall {webvid.shortfall_pairs}" in line
    assert webvid.shortfall_pairs > 0 and "--allow-shortfall" in line and "Traceback" not in res.output
    info = RunDir(out).read_build_info()
    assert info.allow_shortfall is False  # what publishing reads: a shortfall nobody accepted
    assert all(f.shortfall_pairs == 0 for s, f in info.counts.sources.items() if s != "webvid")

    with pytest.raises(ShortfallError, match="webvid"):  # the Python entry point says the same (a resume)
        run_build(BuildOptions(config=cfg, data_root=demo_root, out=out))
    res = CliRunner().invoke(app, ["build", "--config", str(cfg), "--data-root", str(demo_root), "--out", str(out),
                                   "--no-progress", "--allow-shortfall"])
    assert res.exit_code == 0, res.output
    info = RunDir(out).read_build_info()
    assert info.allow_shortfall is True and info.counts.sources["webvid"].shortfall_pairs == webvid.shortfall_pairs

    from videosavi.hub.revision_files import assemble_revision
    from videosavi.hub.validate import validate_run_dir

    assemble_revision(validate_run_dir(out), tmp_path / "staging", repo="org/x", tag="iter1")
    readme = (tmp_path / "staging" / "README.md").read_text(encoding="utf-8")
    assert (f"**Shortfall:** webvid {webvid.delivered_pairs} of 10 pairs ({webvid.shortfall_pairs} pairs short; "
            "built with `--allow-shortfall`") in readme


def test_the_merge_message_counts_the_reserve_videos_added_not_those_asked() -> None:
    def ref(i: int, available: bool = True) -> VideoRef:
        return VideoRef(source="star", video_id=f"v{i}", video_path=f"v{i}.mp4",
                        available=available, unavailable_reason=None if available else "missing_file")

    more = [ref(i) for i in range(5)] + [ref(9, available=False)]
    message = reserve_added_message({"star": 8, "vidal": 2}, more)
    assert message.startswith("the shards are short of pairs; 5 reserve video(s) were added")
    assert "(star: 5 of 8 asked, vidal: 0 of 2 asked)" in message

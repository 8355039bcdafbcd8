"""`savi eval` end to end on the demo videos with tiny random-weight models: held-out videos never
reach a build of the config, the set is balanced and fixed, answers resume from the cache, the
judge's table counts exactly the judgements its replies parse to, unparseable replies are counted
as unjudged (with their raw text), and answers of different eval sets are refused."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import cached_calls, small_options, write_small_config
from videosavi.builders.run.runner import run_build
from videosavi.builders.sources.holdout import holdout_key, is_held_out
from videosavi.builders.sources.sampler import sample_videos
from videosavi.cli import app
from videosavi.config import EvalConfig, load_config
from videosavi.curation.eval_table import TOTAL, error_table
from videosavi.hashing import text_hash
from videosavi.run_dir import RunDir
from videosavi.schemas import ERROR_TYPES, SEVERITIES
from videosavi.schemas.evaluation import JudgementRecord
from videosavi.workflows.evaluation.draw import eval_candidates
from videosavi.workflows.evaluation.eval_dir import AnswersDir, EvalSetDir, JudgeDir, read_rows
from videosavi.workflows.evaluation.judge import judge_answers
from videosavi.workflows.evaluation.judge_stage import JudgePrompt, parse_judgement
from videosavi.workflows.evaluation.models import eval_model_config

HOLDOUT = {"eval": {"holdout": 0.2}}  # holds out 2 of the demo's 13 candidate videos (1 STAR clip, 1 VIDAL)


def write_csv(path: Path, row: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["video_uid", "question_type", "question"], row])  # clip uids hold a comma
    return path


def invoke(*args: str) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.stdout


@dataclass
class EvalRun:
    config: Path
    eval_set: Path
    answers: list[Path]
    judge: Path
    judge_output: str


@pytest.fixture(scope="module")
def eval_run(demo_root: Path, tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> EvalRun:
    """The whole CLI flow: make a 2-question set, answer it with two tiny models, judge both."""
    tmp = tmp_path_factory.mktemp("eval")
    config = write_small_config(tmp / "eval.yaml", HOLDOUT)
    invoke("eval", "make-set", "--config", config, "--data-root", demo_root, "--n", "2", "--out", tmp / "set")
    answers = []
    for label, model in (("iter1", "tiny-qwen2-vl"), ("iter2", "tiny-internvl")):
        invoke("eval", "answer", "--set", tmp / "set", "--model", model, "--out", tmp / label,
               "--data-root", demo_root)
        answers.append(tmp / label)
    out = invoke("eval", "judge", "--answers", *answers, "--model", "tiny-qwen2-vl", "--out", tmp / "judge",
                 "--data-root", demo_root, "--max-new-tokens", "200", "--json")
    return EvalRun(config, tmp / "set", answers, tmp / "judge", out)


def test_holdout_predicate_is_a_fixed_share_of_uids() -> None:
    rule = EvalConfig(holdout=0.1)
    uids = [f"webvid/{i}" for i in range(5000)]
    held = [u for u in uids if is_held_out(rule, "webvid", u)]
    assert 400 < len(held) < 600  # ~10%
    assert held == [u for u in uids if holdout_key("videosavi-eval", "webvid", u) < 0.1]
    assert not any(is_held_out(None, "webvid", u) for u in uids)
    other_salt = {u for u in uids if is_held_out(EvalConfig(holdout=0.1, salt="other"), "webvid", u)}
    assert other_salt != set(held)


def test_eval_videos_never_enter_a_build_of_the_config(eval_run: EvalRun, demo_root: Path, tmp_path: Path) -> None:
    questions = EvalSetDir(eval_run.eval_set).read_questions()
    eval_uids = {q.video_uid for q in questions}
    cfg = load_config(eval_run.config)
    # without the holdout, the same seed would have drawn eval videos into the build: the test can fail
    bare = load_config(eval_run.config, {"eval": None})
    assert eval_uids & {v.video_uid for v in sample_videos(bare, demo_root).videos}
    sample = sample_videos(cfg, demo_root)
    assert not eval_uids & {v.video_uid for v in sample.videos}
    assert sum(s.held_out for s in sample.sources) == 2
    run_build(small_options(eval_run.config, demo_root, tmp_path / "build"))
    run = RunDir(tmp_path / "build")
    built = {v.video_uid for v in run.read_videos()}
    from tests.helpers.build_helpers import rows

    assert built and not eval_uids & built
    assert not eval_uids & {r["video_uid"] for r in rows(run.path)}
    # every eval video is one the holdout reserves, and the draw offers nothing else
    assert all(is_held_out(cfg.eval, q.source, q.video_uid) for q in questions)
    assert all(is_held_out(cfg.eval, v.source, v.video_uid) for v in eval_candidates(cfg, demo_root))


def test_the_set_is_balanced_fixed_and_written_once(eval_run: EvalRun, demo_root: Path) -> None:
    es = EvalSetDir(eval_run.eval_set)
    info, questions = es.read_info(), es.read_questions()
    assert [q.question_type for q in questions] == ["spatial", "temporal"]
    assert info.by_question_type == {"spatial": 1, "temporal": 1} and info.n_questions == 2
    assert info.by_source == {"star": 1, "vidal": 1}  # interleaved by the config's quotas (4 STAR : 2 VIDAL)
    assert all(len(q.frame_indices) == 8 for q in questions)  # the config's frames, stored as indices
    assert info.questions_from == "model" and info.question_model is not None
    assert info.question_model.name_or_path == "tiny-qwen2-vl"
    assert info.seed == 7 and info.holdout == {"holdout": 0.2, "salt": "videosavi-eval"}
    res = CliRunner().invoke(app, ["eval", "make-set", "--config", str(eval_run.config), "--data-root",
                                   str(demo_root), "--n", "2", "--out", str(eval_run.eval_set)])
    assert res.exit_code == 2 and "already holds an eval set" in res.output


def test_questions_from_a_file_must_be_held_out(eval_run: EvalRun, demo_root: Path, tmp_path: Path) -> None:
    held = EvalSetDir(eval_run.eval_set).read_questions()[1]
    good = tmp_path / "q.jsonl"
    good.write_text(json.dumps({"video_uid": held.video_uid, "question_type": "temporal",
                                "question": "What does the moving square do after it reaches the edge?"}) + "\n")
    out = invoke("eval", "make-set", "--config", eval_run.config, "--data-root", demo_root, "--questions", good,
                 "--out", tmp_path / "given")
    assert "wrote 1 questions" in out
    info = EvalSetDir(tmp_path / "given").read_info()
    assert info.questions_from == "file" and info.question_model is None
    built_uid = next(v.video_uid for v in sample_videos(load_config(eval_run.config), demo_root).available)
    bad = write_csv(tmp_path / "bad.csv", [built_uid, "spatial", "Where is the square?"])
    res = CliRunner().invoke(app, ["eval", "make-set", "--config", str(eval_run.config), "--data-root",
                                   str(demo_root), "--questions", str(bad), "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "not held out by this config" in res.output


def test_answers_use_the_answer_prompt_and_resume_from_the_cache(eval_run: EvalRun, demo_root: Path) -> None:
    ad = AnswersDir(eval_run.answers[0])
    info, answers = ad.read_info(), ad.read_answers()
    assert info.label == "iter1" and info.n_answered == 2 and all(a.answer for a in answers)
    set_info = EvalSetDir(eval_run.eval_set).read_info()
    assert (info.set_id, info.question_version) == (set_info.set_id, set_info.question_version)
    assert info.params == set_info.answer_params
    before = cached_calls(ad.path)
    invoke("eval", "answer", "--set", eval_run.eval_set, "--model", "tiny-qwen2-vl", "--out", ad.path,
           "--data-root", demo_root)
    assert cached_calls(ad.path) == before  # no new model call
    assert ad.read_answers() == answers
    res = CliRunner().invoke(app, ["eval", "answer", "--set", str(eval_run.eval_set), "--model", "tiny-internvl",
                                   "--out", str(ad.path), "--data-root", str(demo_root)])
    assert res.exit_code == 2 and "different setup" in res.output


def test_judge_table_counts_exactly_the_parsed_judgements(eval_run: EvalRun) -> None:
    jd = JudgeDir(eval_run.judge)
    records = read_rows(jd.judgements, JudgementRecord)
    assert [(r.label, r.question_id) for r in records] == [
        ("iter1", "q0001"), ("iter1", "q0002"), ("iter2", "q0001"), ("iter2", "q0002")]
    assert all(r.status == "judged" for r in records)
    # count again from the judge's raw replies, through the parser alone
    counted: Counter = Counter()
    for r in records:
        for e in parse_judgement(r.raw_text or "").errors:
            assert e.severity is None  # Figure 12's protocol asks for none
            counted[(r.label, e.error_type)] += 1
    payload = json.loads(eval_run.judge_output)
    assert payload == json.loads(jd.table_json.read_text())
    table = payload["table"]
    assert table["labels"] == ["iter1", "iter2"]
    rows = {row["error_type"]: row for row in [*table["rows"], table["total"]]}
    assert list(rows) == [*ERROR_TYPES, TOTAL]
    for label in ("iter1", "iter2"):
        for et in ERROR_TYPES:
            cell = rows[et]["cells"][label]
            assert cell["all"] == cell["unrated"] == counted[(label, et)]
            assert [cell[s] for s in SEVERITIES] == [0, 0]
        assert rows[TOTAL]["cells"][label]["all"] == sum(v for k, v in counted.items() if k[0] == label)
    before, after = (rows[TOTAL]["cells"][k]["all"] for k in ("iter1", "iter2"))
    assert rows[TOTAL]["change"]["iter2"] == (None if before == 0 else pytest.approx((after - before) / before))
    assert [c["judged"] for c in table["columns"]] == [2, 2]
    assert [c["unjudged"] + c["unanswered"] for c in table["columns"]] == [0, 0]
    info = json.loads(jd.info_json.read_text())
    assert info["prompt_hash"] == text_hash(jd.prompt.read_text()) == JudgePrompt.load().hash  # stored, versioned
    assert [a["label"] for a in info["answers"]] == ["iter1", "iter2"]
    md = jd.table_md.read_text()
    assert "| **total** |" in md and "change iter1→iter2" in md and "critical/minor" not in md
    assert info["severity"] is False


def test_judge_plot_has_one_point_per_iteration(eval_run: EvalRun) -> None:
    from PIL import Image

    from videosavi.cards.eval_plots import error_table_figure

    records = read_rows(JudgeDir(eval_run.judge).judgements, JudgementRecord)
    table = error_table(records, ["iter1", "iter2"])
    fig = error_table_figure(table)
    lines = fig.axes[0].lines
    assert len(lines) == len(ERROR_TYPES)
    for line, row in zip(lines, table.rows, strict=True):
        assert list(line.get_ydata()) == [row.cells[k].all for k in ("iter1", "iter2")]
    bars = [p.get_height() for p in fig.axes[1].patches]
    assert bars == [table.total.cells[k].all for k in ("iter1", "iter2")]  # no severity asked: one bar each
    with Image.open(JudgeDir(eval_run.judge).plot) as img:
        assert img.format == "PNG" and img.width > 500


def test_the_judge_prompt_gives_figure_12s_six_definitions_whole() -> None:
    """Both halves of every Figure 12 definition, in our words; severity only when asked for."""
    text = JudgePrompt.load().text
    for words in ("the frames contradict", "never appear in the video",  # factual inaccuracy
                  "wrong sequence", "which action led to which",  # temporal ordering: order and causal links
                  "relative locations",  # spatial relationship
                  "not in the video", "wrong property",  # object hallucination: absent objects and wrong attributes
                  "why something happened", "motives or intentions",  # causal reasoning
                  "needed to answer the question", "change how the scene is understood"):  # detail omission
        assert words in text, words
    assert '"severity"' not in text and "critical" not in text
    rated = JudgePrompt.load(severity=True)
    assert '"severity": "critical"' in rated.text and rated.hash != JudgePrompt.load().hash


def test_severity_is_stripped_unless_asked_and_required_when_asked() -> None:
    from videosavi.builders.generate.stages.parsing import ParseError
    from videosavi.workflows.evaluation.judge_stage import judge_schema

    rated = json.dumps({"errors": [{"quote": "a", "explanation": "b", "error_type": "object_hallucination",
                                    "severity": "minor"}], "assessment": "c"})
    plain = json.dumps({"errors": [{"quote": "a", "explanation": "b", "error_type": "object_hallucination"}],
                        "assessment": "c"})
    assert parse_judgement(rated).errors[0].severity is None
    assert parse_judgement(rated, severity=True).errors[0].severity == "minor"
    with pytest.raises(ParseError, match="severity"):
        parse_judgement(plain, severity=True)
    items = {s: judge_schema(s)["properties"]["errors"]["items"] for s in (False, True)}
    assert "severity" not in items[False]["properties"] and "severity" in items[True]["required"]


def test_judge_with_severity_rates_every_error_and_splits_the_table(eval_run: EvalRun, demo_root: Path,
                                                                     tmp_path: Path) -> None:
    res = judge_answers(eval_run.answers, eval_model_config("tiny-qwen2-vl"), tmp_path / "rated",
                        data_root=demo_root, max_new_tokens=200, severity=True)
    assert res.info.severity is True and res.info.prompt_hash == JudgePrompt.load(severity=True).hash
    judged = [r for r in res.records if r.status == "judged"]
    assert judged and all(e.severity in ("critical", "minor") for r in judged for e in r.errors)
    table = error_table(res.records, res.labels)
    assert all(c.unrated == 0 for c in table.total.cells.values())
    assert table.rated == any(r.errors for r in judged)


@pytest.mark.parametrize(("max_new_tokens", "constrained"), [(4, True), (48, False)])
def test_unparseable_replies_are_quarantined_and_counted_as_unjudged(eval_run: EvalRun, demo_root: Path,
                                                                     tmp_path: Path, max_new_tokens: int,
                                                                     constrained: bool) -> None:
    # four tokens cannot hold a judgement, and a random model left free writes no JSON: every reply
    # is retried, then kept as raw text
    res = judge_answers(eval_run.answers, eval_model_config("tiny-qwen2-vl", constrained=constrained),
                        tmp_path / "judge", data_root=demo_root, max_new_tokens=max_new_tokens)
    assert {r.status for r in res.records} == {"unjudged"}
    assert all(r.raw_text and r.attempts == 3 and r.reason for r in res.records)
    quarantined = RunDir(tmp_path / "judge").read_quarantine()
    assert len(quarantined) == 4 and all(q.stage == "judge" and q.raw_text for q in quarantined)
    table = error_table(res.records, res.labels)
    assert [(c.judged, c.unjudged) for c in table.columns] == [(0, 2), (0, 2)]
    assert table.total.cells["iter1"].all == 0
    from videosavi.curation.eval_table import table_markdown

    assert "| unjudged (reply never parsed) | 2 | 2 |" in table_markdown(table)


def test_answers_of_different_eval_sets_are_refused(eval_run: EvalRun, demo_root: Path, tmp_path: Path) -> None:
    held = EvalSetDir(eval_run.eval_set).read_questions()[0]
    given = write_csv(tmp_path / "q.csv", [held.video_uid, "spatial", "Which colour is the square?"])
    invoke("eval", "make-set", "--config", eval_run.config, "--data-root", demo_root, "--questions", given,
           "--out", tmp_path / "other-set")
    invoke("eval", "answer", "--set", tmp_path / "other-set", "--model", "tiny-qwen2-vl", "--out", tmp_path / "other",
           "--data-root", demo_root)
    res = CliRunner().invoke(app, ["eval", "judge", "--answers", str(eval_run.answers[0]), str(tmp_path / "other"),
                                   "--model", "tiny-qwen2-vl", "--out", str(tmp_path / "j"),
                                   "--data-root", str(demo_root)])
    assert res.exit_code == 2
    assert "judge answers of one eval set only" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "j").exists()


def test_make_set_needs_a_holdout_and_answer_needs_the_videos(eval_run: EvalRun, demo_root: Path,
                                                              tmp_path: Path) -> None:
    bare = write_small_config(tmp_path / "bare.yaml")
    res = CliRunner().invoke(app, ["eval", "make-set", "--config", str(bare), "--data-root", str(demo_root),
                                   "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "eval: {holdout: 0.05}" in res.output
    res = CliRunner().invoke(app, ["eval", "answer", "--set", str(eval_run.eval_set), "--model", "tiny-qwen2-vl",
                                   "--out", str(tmp_path / "a"), "--data-root", str(tmp_path)])
    assert res.exit_code == 2 and "lack their exact video" in res.output


# --- the paper's protocol: iteration 1's questions ---------------------------------------------------------


@pytest.fixture(scope="module")
def iter1_store(small_reference: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from videosavi.hub.publish import publish_run

    store = tmp_path_factory.mktemp("paper-protocol") / "store"
    publish_run(small_reference, "org/paper-eval", store=store)
    return store


def test_the_paper_protocol_asks_iteration_1s_questions_on_their_own_frames(
        iter1_store: Path, small_reference: Path, small_config: Path, demo_root: Path, tmp_path: Path) -> None:
    from tests.helpers.factories import read_pairs

    pairs = {p.pair_id: p for p in read_pairs(small_reference)}
    out = invoke("eval", "make-set", "--protocol", "paper", "--dataset", "org/paper-eval", "--revision", "iter1",
                 "--store", iter1_store, "--config", small_config, "--data-root", demo_root, "--n", "3",
                 "--out", tmp_path / "set")
    assert "wrote 3 questions" in out
    es = EvalSetDir(tmp_path / "set")
    info, questions = es.read_info(), es.read_questions()
    assert info.protocol == "paper" and info.questions_from == "revision" and info.holdout == {}
    assert info.questions_revision is not None and info.questions_revision.startswith("org/paper-eval@iter1 (")
    by_question = {(p.video_uid, p.question): p for p in pairs.values()}
    for q in questions:  # each is a pair's own question, video and frames: what iteration 1 asked itself
        pair = by_question[(q.video_uid, q.question)]
        assert (q.frame_indices, q.video_sha256, q.question_type) == (pair.frame_indices, pair.video_sha256,
                                                                       pair.question_type)
    assert [q.question_type for q in questions] == ["spatial", "temporal", "spatial"]
    assert len({q.video_uid for q in questions}) == 3  # one per video while videos last
    again = tmp_path / "again"
    invoke("eval", "make-set", "--protocol", "paper", "--dataset", "org/paper-eval", "--store", iter1_store,
           "--config", small_config, "--out", again, "--n", "3")
    assert EvalSetDir(again).read_questions() == questions and EvalSetDir(again).read_info().set_id == info.set_id
    # the set answers like any other (the videos under the config's roots, hashes checked)
    invoke("eval", "answer", "--set", tmp_path / "set", "--model", "tiny-qwen2-vl", "--out", tmp_path / "a",
           "--data-root", demo_root)
    assert AnswersDir(tmp_path / "a").read_info().n_answered == 3


@pytest.mark.parametrize(("args", "words"), [
    (["--protocol", "paper", "--store", "STORE"], "pass --dataset"),
    (["--protocol", "paper", "--dataset", "org/paper-eval", "--store", "STORE", "--questions", "q.csv"],
     "do not apply"),
    (["--protocol", "paper", "--dataset", "org/paper-eval", "--store", "STORE", "--revision", "iter9"], "iter9"),
    (["--protocol", "paper", "--dataset", "org/paper-eval", "--store", "STORE", "--n", "99"], "fewer than --n 99"),
    (["--dataset", "org/paper-eval"], "--dataset is for --protocol paper"),
    (["--protocol", "table2"], "unknown --protocol"),
])
def test_paper_protocol_refusals(iter1_store: Path, small_config: Path, tmp_path: Path, args: list[str],
                                 words: str) -> None:
    args = [str(iter1_store) if a == "STORE" else a for a in args]
    res = CliRunner().invoke(app, ["eval", "make-set", "--config", str(small_config), "--out", str(tmp_path / "s"),
                                   *args])
    assert res.exit_code == 2 and words in res.output, res.output
    assert not (tmp_path / "s").exists()


def test_the_paper_protocol_refuses_a_later_iterations_pairs(small_config: Path, tmp_path: Path) -> None:
    from tests.helpers.factories import make_pairs
    from videosavi.errors import ConfigError
    from videosavi.schemas import PreferencePair
    from videosavi.schemas.arrow import to_table
    from videosavi.workflows.evaluation.make_set import make_paper_eval_set

    rows = to_table(make_pairs(n_videos=2, iteration=2), PreferencePair).to_pylist()
    with pytest.raises(ConfigError, match=r"iteration\(s\) \[2\]"):
        make_paper_eval_set(load_config(small_config), tmp_path / "s", rows, revision_label="org/x@iter2", n=2)

"""`savi bench` without LMMs-Eval (issue 24): LMMs-Eval's results read into our schema, task names and task
data checked from the task YAMLs, models resolved (loop iterations, bad folders), results files that
belong to one model, the report's table, figure and model-card evaluation results, the bundled tiny
task, and the loop's evaluation hook. What needs LMMs-Eval itself is in test_bench_lmms.py
(`make test-bench`)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from videosavi.cli import app
from videosavi.errors import BenchError
from videosavi.schemas.bench import BenchModel, BenchResults, BenchScore
from videosavi.workflows.bench.paper import PAPER_BENCHMARKS, expand_tasks
from videosavi.workflows.bench.results_parse import score_from_results

TINY = "videosavi_tiny_mc"


def score(task: str, value: float, *, scale: str = "fraction", n: int = 8, limit: int | None = None,
          benchmark: str | None = None, dataset: str | None = "json") -> BenchScore:
    return BenchScore(task=task, benchmark=benchmark, metric="accuracy", value=value, scale=scale,  # type: ignore[arg-type]
                      n=n, lmms_eval_version="0.7.3", evaluated_at="2026-12-06T00:00:00+00:00", seconds=1.0,
                      raw_results=f"lmms-eval/x/{task}/r_results.json", limit=limit, dataset=dataset)


def model(revision: str = "local:abc", iteration: int | None = 0, card: str | None = None, **kw: Any) -> BenchModel:
    return BenchModel(name_or_path=kw.pop("name", "m"), revision=revision, iteration=iteration,
                      wrapper=kw.pop("wrapper", "qwen2_vl"), frames=kw.pop("frames", 32), card=card, **kw)


def results(label: str, iteration: int | None, scores: dict[str, float], card: str | None = None,
            **score_kw: Any) -> BenchResults:
    return BenchResults(label=label, model=model(f"local:{label}", iteration, card),
                        scores={t: score(t, v, **score_kw) for t, v in scores.items()}, videosavi_version="0.1.0")


# --- task names --------------------------------------------------------------------------------------------


def test_paper_and_short_names_expand_to_the_six_lmms_eval_tasks() -> None:
    six = [b.task for b in PAPER_BENCHMARKS]
    assert expand_tasks(["paper"]) == six
    assert expand_tasks(["mvbench", "egoschema,nextqa", "mvbench", "my_task"]) == [
        "mvbench", "egoschema_subset", "nextqa_mc_test", "my_task"]
    assert len(six) == 6 and [b.name for b in PAPER_BENCHMARKS] == [
        "TempCompass", "PerceptionTest", "NeXTQA", "MVBench", "EgoSchema", "LongVideoBench"]


# --- LMMs-Eval's results -> BenchScore ---------------------------------------------------------------------


def raw_results(**blocks: Any) -> dict[str, Any]:
    return {"results": blocks, "versions": {}, "n-samples": {}, "configs": {}, "group_subtasks": {}}


def test_a_task_score_is_read_with_its_stderr_count_and_version() -> None:
    raw = raw_results(t={"alias": "t", "accuracy,none": 0.625, "accuracy_stderr,none": 0.18})
    raw["n-samples"]["t"] = {"original": 8, "effective": 8}
    raw["versions"]["t"] = 2.0
    raw["configs"]["t"] = {"dataset_path": "org/data", "metric_list": [{"metric": "accuracy"}]}
    s = score_from_results(raw, "t", lmms_eval_version="0.7.3", seconds=3.2, raw_results="a/b_results.json",
                           raw_samples=None)
    assert (s.metric, s.value, s.stderr, s.n, s.task_version, s.dataset) == ("accuracy", 0.625, 0.18, 8, "2.0",
                                                                              "org/data")
    assert s.scale == "fraction" and s.percent == pytest.approx(62.5)


def test_a_paper_benchmark_uses_the_papers_metric_and_scale() -> None:
    raw = raw_results(tempcompass_multi_choice={"speed_accuracy,none": 50.0, "avg_accuracy,none": 61.5})
    s = score_from_results(raw, "tempcompass_multi_choice", lmms_eval_version="0.7.3", seconds=1,
                           raw_results="r.json", raw_samples=None)
    assert (s.metric, s.scale, s.percent, s.benchmark) == ("avg_accuracy", "percent", 61.5, "TempCompass")


def test_a_group_without_a_score_is_the_sample_weighted_mean_of_its_tasks() -> None:
    raw = raw_results(mvbench={"alias": "mvbench"}, mvbench_a={"mvbench_accuracy,none": 50.0},
                      mvbench_b={"mvbench_accuracy,none": 80.0})
    raw["group_subtasks"]["mvbench"] = ["mvbench_a", "mvbench_b"]
    raw["n-samples"] = {"mvbench_a": {"effective": 100}, "mvbench_b": {"effective": 300}}
    s = score_from_results(raw, "mvbench", lmms_eval_version="0.7.3", seconds=1, raw_results="r.json",
                           raw_samples=None)
    assert s.value == pytest.approx(72.5) and s.n == 400 and s.aggregated_by == "videosavi"
    assert s.subtasks == ["mvbench_a", "mvbench_b"] and s.scale == "percent" and s.benchmark == "MVBench"


def test_scores_that_cannot_be_read_are_refused() -> None:
    with pytest.raises(BenchError, match="no task x"):
        score_from_results(raw_results(), "x", lmms_eval_version="v", seconds=0, raw_results="r", raw_samples=None)
    with pytest.raises(BenchError, match="no numeric metric"):
        score_from_results(raw_results(x={"alias": "x", "accuracy,none": "N/A"}), "x", lmms_eval_version="v",
                           seconds=0, raw_results="r", raw_samples=None)
    raw = raw_results(g={"alias": "g"}, a={"acc,none": 1.0}, b={"f1,none": 0.5})
    raw["group_subtasks"]["g"] = ["a", "b"]
    with pytest.raises(BenchError, match="no single score"):
        score_from_results(raw, "g", lmms_eval_version="v", seconds=0, raw_results="r", raw_samples=None)


def test_the_results_schema_refuses_what_would_mislead() -> None:
    with pytest.raises(ValueError, match="finite"):
        score("t", float("nan"))
    with pytest.raises(ValueError, match="inside the output folder"):
        BenchScore(**{**score("t", 0.5).model_dump(), "raw_results": "../elsewhere.json"})
    with pytest.raises(ValueError, match="is for task"):
        BenchResults(label="x", model=model(), scores={"a": score("b", 0.5)}, videosavi_version="0")
    with pytest.raises(ValueError):
        BenchResults(label="../x", model=model(), videosavi_version="0")


# --- results files ------------------------------------------------------------------------------------------


def test_a_results_file_belongs_to_one_model(tmp_path: Path) -> None:
    from videosavi.workflows.bench.results_file import check_same_model, load_results, save_results

    path = tmp_path / "base.json"
    res = results("base", 0, {TINY: 0.5})
    save_results(path, res)
    assert load_results(path) == res and not list(tmp_path.glob(".*tmp"))
    check_same_model(path, res.model, model("local:base", 0))  # the same weights: fine
    with pytest.raises(BenchError, match="holds results of another model"):
        check_same_model(path, res.model, model("local:other", 0))
    with pytest.raises(BenchError, match="run with frames 32, not 8"):
        check_same_model(path, res.model, model("local:base", 0, frames=8))


def test_a_folder_of_results_is_read_strictly(tmp_path: Path) -> None:
    from videosavi.workflows.bench.results_file import all_results, save_results

    with pytest.raises(BenchError, match="holds no savi bench results"):
        all_results(tmp_path)
    save_results(tmp_path / "iter1.json", results("iter1", 1, {TINY: 0.5}))
    save_results(tmp_path / "base.json", results("base", 0, {TINY: 0.25}))
    assert [r.label for _, r in all_results(tmp_path)] == ["base", "iter1"]
    shutil.copy(tmp_path / "iter1.json", tmp_path / "iter2.json")
    with pytest.raises(BenchError, match="labelled 'iter1'"):
        all_results(tmp_path)
    (tmp_path / "iter2.json").write_text("{}", encoding="utf-8")
    with pytest.raises(BenchError, match=r"iter2\.json is not a savi bench results file"):
        all_results(tmp_path)


# --- task YAMLs ----------------------------------------------------------------------------------------------


def write_tasks(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_template_yaml").write_text("dataset_path: org/bench\ntest_split: test\n", encoding="utf-8")
    (folder / "a.yaml").write_text("include: _template_yaml\ntask: bench_a\ntag: [bench_tag]\n"
                                   "doc_to_text: !function utils.doc_to_text\n", encoding="utf-8")
    (folder / "b.yaml").write_text("task: bench_b\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                   "    test: missing.jsonl\n", encoding="utf-8")
    (folder / "g.yaml").write_text("group: bench_group\ntask:\n  - bench_a\n  - bench_b\n", encoding="utf-8")
    return folder


def test_task_names_come_from_the_yamls_with_suggestions_for_typos(tmp_path: Path) -> None:
    from videosavi.workflows.bench.tasks import TaskIndex, scan_tasks

    index = TaskIndex(scan_tasks(write_tasks(tmp_path / "tasks")))
    assert {n: e.kind for n, e in index.entries.items()} == {
        "bench_a": "task", "bench_tag": "tag", "bench_b": "task", "bench_group": "group"}
    index.check(["bench_a", "bench_group", "bench_tag"])
    with pytest.raises(BenchError, match=r"unknown LMMs-Eval task .bench_c.; did you mean bench_b, bench_a"):
        index.check(["bench_c"])
    assert [e.name for e in index.leaves("bench_group")] == ["bench_a", "bench_b"]
    assert [e.name for e in index.leaves("bench_tag")] == ["bench_a"]
    assert index.config("bench_a")["dataset_path"] == "org/bench"  # from the included template


def test_task_data_that_cannot_be_had_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from videosavi.workflows.bench.tasks import TaskIndex, data_problem, scan_tasks

    folder = write_tasks(tmp_path / "tasks")
    index = TaskIndex(scan_tasks(folder))
    assert "missing.jsonl does not exist" in str(data_problem(index.config("bench_b"), folder / "b.yaml"))
    (folder / "missing.jsonl").write_text("{}\n", encoding="utf-8")
    assert data_problem(index.config("bench_b"), folder / "b.yaml") is None
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert data_problem(index.config("bench_a"), folder / "a.yaml") is None  # the Hub is on: LMMs-Eval fetches it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert "Hub dataset org/bench, which is not in the local Hugging Face cache" in str(
        data_problem(index.config("bench_a"), folder / "a.yaml"))
    assert "downloads the videos" in str(data_problem({"dataset_path": "json", "dataset_kwargs": {"video": True}},
                                                      folder / "b.yaml"))


# --- the model ------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_copy(tmp_path: Path) -> Path:
    from videosavi.builders.generate.models.tiny import ensure_tiny_model

    return Path(shutil.copytree(ensure_tiny_model("tiny-qwen2-vl"), tmp_path / "model"))


def test_a_model_folder_gets_its_wrapper_revision_and_frames(tiny_copy: Path) -> None:
    from videosavi.workflows.bench.model_ref import resolve_model

    ref = resolve_model(str(tiny_copy), frames=32)
    assert (ref.wrapper, ref.label, ref.model_type) == ("qwen2_vl", "model", "qwen2_vl")
    assert ref.model_args == {"pretrained": str(tiny_copy.resolve()), "device_map": "cpu", "max_num_frames": "32"}
    assert ref.revision.startswith("local:") and ref.card is None
    served = resolve_model("gpt-4o", base_url="https://api.example/v1", frames=16)
    assert (served.wrapper, served.revision, served.label) == ("openai", "served:gpt-4o", "gpt-4o")
    assert served.model_args == {"model": "gpt-4o", "base_url": "https://api.example/v1", "max_frames_num": "16"}


def test_a_loop_folder_gives_the_model_of_each_iteration(tiny_copy: Path, tmp_path: Path) -> None:
    from videosavi.workflows.bench.model_ref import resolve_model

    loop = tmp_path / "loop"
    (loop / "iter1-model").mkdir(parents=True)
    (loop / "iter1-model" / "train.json").write_text(json.dumps({"base_model": {"name_or_path": str(tiny_copy)}}))
    shutil.copytree(tiny_copy, loop / "iter1-model" / "merged")
    (loop / "iter1-model" / "merged" / "README.md").write_text("---\nlicense: mit\n---\n# m\n", encoding="utf-8")
    base = resolve_model(str(loop), iteration=0)
    assert (base.label, base.iteration, base.given) == ("base", 0, str(tiny_copy))
    one = resolve_model(str(loop), iteration=1)
    assert (one.label, one.given, one.card) == ("iter1", str(loop / "iter1-model" / "merged"),
                                                loop / "iter1-model" / "merged" / "README.md")
    with pytest.raises(BenchError, match="say which model with --iteration"):
        resolve_model(str(loop))
    with pytest.raises(BenchError, match=r"iteration 2 of .* is not trained yet"):
        resolve_model(str(loop), iteration=2)


def test_models_that_cannot_load_are_refused_before_lmms_eval(tiny_copy: Path, tmp_path: Path) -> None:
    from videosavi.workflows.bench.model_ref import resolve_model

    with pytest.raises(BenchError, match="no such folder, and not a hub id"):
        resolve_model("no-such-model")
    with pytest.raises(BenchError, match="--label 'a b' must be"):
        resolve_model(str(tiny_copy), label="a b")
    config = json.loads((tiny_copy / "config.json").read_text())
    (tiny_copy / "config.json").write_text(json.dumps({**config, "model_type": "mystery"}))
    with pytest.raises(BenchError, match="model_type 'mystery', which no LMMs-Eval wrapper here runs natively"):
        resolve_model(str(tiny_copy))
    assert resolve_model(str(tiny_copy), wrapper="llava_hf").wrapper == "llava_hf"
    (tiny_copy / "model.safetensors").write_bytes(b"x" * 64)
    with pytest.raises(BenchError, match=r"model\.safetensors is not a readable safetensors file"):
        resolve_model(str(tiny_copy), wrapper="llava_hf")
    (tiny_copy / "config.json").unlink()
    with pytest.raises(BenchError, match=r"config\.json is missing"):
        resolve_model(str(tiny_copy))


# --- LMMs-Eval itself: missing, and what it logged when it failed ---------------------------------------------


def test_lmms_eval_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "-m", "tiny-qwen2-vl", "--tasks", TINY, "--lmms-eval", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "o"), "--no-progress"])
    assert res.exit_code == 2 and "LMMs-Eval is not installed at" in res.output and "make bench-env" in res.output
    # a Python without lmms_eval (this one)
    res = runner.invoke(app, ["bench", "-m", "tiny-qwen2-vl", "--tasks", TINY, "--lmms-eval", sys.executable,
                              "--out", str(tmp_path / "o"), "--no-progress"])
    assert res.exit_code == 2 and "LMMs-Eval is not installed in" in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1
    monkeypatch.setenv("VIDEOSAVI_LMMS_EVAL", str(tmp_path / "gone"))
    res = runner.invoke(app, ["bench", "-m", "tiny-qwen2-vl", "--no-progress"])
    assert res.exit_code == 2 and "$VIDEOSAVI_LMMS_EVAL is" in res.output
    res = runner.invoke(app, ["bench", "--tasks", TINY, "--no-progress"])
    assert res.exit_code == 2 and "give the model to evaluate with --model" in res.output


def test_the_cause_lmms_eval_logged_is_found_under_its_wrappers() -> None:
    from videosavi.workflows.bench.lmms_run import failure_reason

    log = ("Model Responding: 100%|##| 4/4\nTraceback (most recent call last):\n  File 'x'\n"
           "RuntimeError: scoring exploded on q2\n\nTraceback (most recent call last):\n"
           "tenacity.RetryError: RetryError[<Future raised RuntimeError>]\n"
           "\x1b[32m2026-12-06\x1b[0m | \x1b[31mERROR   \x1b[0m | lmms_eval.__main__:cli_evaluate:614 - Error during "
           "evaluation: RetryError[<Future raised RuntimeError>]. Please set `--verbosity=DEBUG` to get more "
           "information.\n")
    assert failure_reason(log).startswith("RuntimeError: scoring exploded on q2; then: Error during evaluation")
    assert failure_reason("2026 | ERROR | m:f:1 - Tasks not found: x\n") == "Tasks not found: x"
    assert failure_reason("") == "it wrote no log"


# --- the report: Table 1 / Figure 3 and the cards ---------------------------------------------------------------


def test_the_table_shows_scores_and_changes_over_the_base_as_the_paper_prints_them() -> None:
    from videosavi.cards.bench_table import Reference, bench_table, table_markdown

    rs = [results("iter2", 2, {"mvbench": 0.74, "x": 0.5}), results("base", 0, {"mvbench": 0.698}),
          results("other", None, {"x": 0.25}, limit=4)]
    rs[0].scores["mvbench"] = score("mvbench", 74.0, scale="percent", benchmark="MVBench")
    rs[1].scores["mvbench"] = score("mvbench", 69.8, scale="percent", benchmark="MVBench")
    table = bench_table(rs, order=["tempcompass_multi_choice", "mvbench"],
                        references=[Reference("VideoSAVi, paper", {"MVBench": 74.0}), Reference("none", {"Z": 1})])
    assert table.columns == ["mvbench", "x"] and table.base == "base"
    assert [r.label for r in table.rows] == ["base", "iter2", "other"]
    assert table.rows[1].cells["mvbench"].delta == pytest.approx(4.2)
    assert table.rows[1].cells["x"].delta is None  # the base has no score for x
    assert table.series("mvbench") == [(0, 69.8), (2, 74.0)]
    md = table_markdown(table)
    assert "| model | MVBench | x |" in md and "| iter2 | 74.0 (+4.2) | 50.0 |" in md
    assert "| other |  | 25.0* |" in md and "*VideoSAVi, paper*" in md and "| *none*" not in md
    assert "`*`: scored on a subset" in md
    with pytest.raises(ValueError, match="no results labelled 'nope'"):
        bench_table(rs, base="nope")


def test_the_figure_has_one_panel_per_benchmark_over_the_iterations() -> None:
    from videosavi.cards.bench_plots import bench_figure
    from videosavi.cards.bench_table import bench_table

    table = bench_table([results("base", 0, {"a": 0.5, "b": 0.1}), results("iter1", 1, {"a": 0.75, "b": 0.2}),
                         results("iter2", 2, {"a": 0.7})])
    fig = bench_figure(table)
    lines = {ax.get_title(): ax.get_lines()[0] for ax in fig.axes if ax.get_lines()}
    assert list(lines["a"].get_xdata()) == [0, 1, 2] and list(lines["a"].get_ydata()) == [50.0, 75.0, 70.0]
    assert list(lines["b"].get_ydata()) == pytest.approx([10.0, 20.0])


def savi_train_card() -> str:
    from videosavi.cards.model_card import ModelCardInputs, render_model_card
    from videosavi.training.metrics import PAPER_METRICS

    inputs = ModelCardInputs(
        base_model="tiny-qwen2-vl", base_model_revision="local:x", dataset_repo="org/v", dataset_revision="iter1",
        dataset_sha="f" * 40, hyperparameters={"beta": 0.1}, counts={"total_rows": 2, "kept_rows": 2,
        "skipped_rows": {}, "kept_videos": 1, "total_videos": 1}, steps=1, final_metrics={"loss": 0.6},
        metric_names=PAPER_METRICS, iteration=1)
    return str(render_model_card(inputs, "merged"))


def test_scores_go_into_a_model_card_as_hub_evaluation_results() -> None:
    from huggingface_hub import ModelCard

    from videosavi.cards.eval_results import card_with_eval_results, check_card

    res = results("iter1", 1, {TINY: 0.625, "mvbench": 0.7}, dataset="OpenGVLab/MVBench")
    original = savi_train_card()
    text = card_with_eval_results(original, res, "| table |\n")
    found = check_card(text, res)
    card = ModelCard(text, ignore_metadata_errors=False)
    assert [(r.dataset_config, r.metric_value, r.dataset_type) for r in found] == [
        (TINY, 62.5, "OpenGVLab/MVBench"), ("mvbench", 70.0, "OpenGVLab/MVBench")]
    assert card.data.tags and "videosavi" in card.data.tags  # savi train's metadata kept
    assert "## Training data" in card.text and "| table |" in card.text
    # again, with new scores: the section and the results are replaced, not added
    res.scores[TINY] = score(TINY, 0.75)
    again = card_with_eval_results(text, res, "| table 2 |\n")
    assert again.count("## Evaluation") == 1 and "| table 2 |" in again and "| table |" not in again
    assert check_card(again, res)[0].metric_value == 75.0
    with pytest.raises(ValueError, match="differ"):
        check_card(text, res)
    fresh = card_with_eval_results(None, res, "t\n", model_name="served")
    assert ModelCard(fresh).data.model_name == "served"


def test_the_report_writes_table_figure_and_cards_from_results(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from videosavi.workflows.bench.results_file import save_results

    folder = tmp_path / "bench"
    model_dir = tmp_path / "iter1-model" / "merged"
    model_dir.mkdir(parents=True)
    (model_dir / "README.md").write_text(savi_train_card(), encoding="utf-8")
    save_results(folder / "base.json", results("base", 0, {TINY: 0.25}))
    save_results(folder / "iter1.json", results("iter1", 1, {TINY: 0.5}, card=str(model_dir / "README.md")))
    res = CliRunner().invoke(app, ["bench", "report", "--results", str(folder)])
    assert res.exit_code == 0, res.output
    report = folder / "report"
    assert "| iter1 | 50.0 (+25.0) |" in (report / "table.md").read_text(encoding="utf-8")
    assert json.loads((report / "table.json").read_text())["rows"][1]["scores"][TINY]["delta"] == 25.0
    assert (report / "scores.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (report / "cards").iterdir()) == ["base.md", "iter1.md"]
    card = ModelCard.load(model_dir / "README.md", ignore_metadata_errors=False)
    assert card.data.eval_results[0].metric_value == 50.0 and "## Training data" in card.text
    assert f"model card updated: {model_dir / 'README.md'}" in res.output
    res = CliRunner().invoke(app, ["bench", "report", "--results", str(tmp_path / "none")])
    assert res.exit_code == 2 and "is not a folder of savi bench results" in res.output


# --- the bundled tiny task ---------------------------------------------------------------------------------------


def test_the_tiny_task_asks_what_its_videos_show(tmp_path: Path) -> None:
    import numpy as np

    from videosavi.builders.decode.frames import decode_frames
    from videosavi.workflows.bench import mc_task
    from videosavi.workflows.bench.mc_task_utils import LETTERS, doc_to_text, parse_letter, process_results

    folder = mc_task.ensure_tiny_task(tmp_path)
    rows = [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and len({doc_to_text(r) for r in rows}) == 8  # every question's text is its own
    assert (folder / "utils.py").read_text() == Path(mc_task.mc_task_utils.__file__).read_text()
    colours = {name: np.array(rgb) for rgb, name in mc_task._COLOURS.items()}
    for row in rows[:3]:
        frames = decode_frames(row["video"], 4).frames
        truth = row["options"][LETTERS.index(row["answer"])]
        near = np.abs(frames.astype(int) - colours[truth]).sum(axis=-1) < 40
        assert near.sum() > 100, f"{truth} is not in {row['video']}"
    assert mc_task.ensure_tiny_task(tmp_path) == folder  # reused
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / mc_task.TINY_TASK).mkdir()
    with pytest.raises(BenchError, match="is not the bundled videosavi_tiny_mc task"):
        mc_task.ensure_tiny_task(tmp_path / "other")
    assert [parse_letter(t, 4) for t in ("B", "(C) blue", "Answer: D.", "E", "a cat", "")] == ["B", "C", "D", None,
                                                                                              None, None]
    assert process_results(rows[0], [rows[0]["answer"]]) == {"accuracy": 1.0}


# --- savi loop --bench: the evaluation hook --------------------------------------------------------------------


def test_the_loop_evaluates_the_base_and_each_trained_model_as_it_exists(tmp_path: Path) -> None:
    from videosavi.workflows.loop import run_loop

    seen: list[tuple[str, Any]] = []

    def build(i: int, m: str, out: Path) -> Path:
        seen.append(("build", i))
        return out

    def train(i: int, rev: str, m: str, out: Path) -> Path:
        seen.append(("train", i))
        return out / "merged"

    run_loop(2, "base-model", tmp_path, build=build, publish=lambda r: ("t", "s"), train=train,
             evaluate=lambda i, m: seen.append(("eval", (i, m))))
    assert seen == [("eval", (0, "base-model")), ("build", 1), ("train", 1),
                    ("eval", (1, str(tmp_path / "iter1-model" / "merged"))), ("build", 2), ("train", 2),
                    ("eval", (2, str(tmp_path / "iter2-model" / "merged")))]

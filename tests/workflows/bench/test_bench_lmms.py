"""`savi bench` with LMMs-Eval itself (issue 24): the bundled tiny video multiple-choice task end to end
with a tiny model, answers forced right (and wrong) through LMMs-Eval's openai wrapper, `savi loop
--bench` over two iterations with its report and model cards, and each kind of bad input.

These run LMMs-Eval in its own venv: `make test-bench` creates it (`make bench-env`) and points
$VIDEOSAVI_LMMS_EVAL at it. The normal suite skips them (each LMMs-Eval start costs tens of seconds).

The oracle below is an OpenAI-compatible HTTP server standing in for a model that always picks the
right letter (no real model can be made to): it reads the question and options LMMs-Eval sends, looks
the row up in the task's own data.jsonl and answers its letter. A score of 100% from it shows that
LMMs-Eval's scoring, our parsing and our schema carry a right answer through as right.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.fake_openai import FakeServer, completion
from videosavi.cli import app
from videosavi.schemas.bench import BenchModel, BenchResults, BenchScore
from videosavi.workflows.bench.mc_task import TINY_TASK, McRow, ensure_tiny_task, write_mc_task
from videosavi.workflows.bench.mc_task_utils import LETTERS

LMMS = os.environ.get("VIDEOSAVI_LMMS_EVAL", "")
REASON = ("needs the LMMs-Eval venv: run `make test-bench` (it creates .venv-lmms-eval with `make bench-env` and "
          "sets $VIDEOSAVI_LMMS_EVAL)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not LMMS or not (Path(LMMS) / "bin" / "python").is_file(), reason=REASON)]


def savi(*args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--no-progress"])


def results(folder: Path, label: str) -> BenchResults:
    return BenchResults.model_validate_json((folder / f"{label}.json").read_text(encoding="utf-8"))


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


# --- the oracle: answers a row's right (or a wrong) letter ------------------------------------------------


def _rows(task_folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (task_folder / "data.jsonl").read_text(encoding="utf-8").splitlines()]


class Oracle:
    """A FakeServer that answers each question with its row's letter."""

    def __init__(self, task_folder: Path) -> None:
        self.rows = _rows(task_folder)
        self.unmatched = 0
        self.images: list[int] = []
        self.server = FakeServer(self._answer)
        self.url = self.server.url

    def _answer(self, n: int, body: dict, headers: dict) -> tuple[int, str, float]:
        parts = [p for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]]
        text = "\n".join(p.get("text", "") for p in parts if p.get("type") == "text")
        self.images.append(sum(1 for p in parts if p.get("type") == "image_url"))
        for row in self.rows:
            block = row["question"] + "\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(row["options"]))
            if block in text:
                return 200, completion(row["answer"]), 0.0
        self.unmatched += 1
        return 200, completion("I cannot tell."), 0.0

    def close(self) -> None:
        self.server.close()


# --- savi loop --bench: the tiny task with a tiny model, two iterations, the report and the cards ---------


@pytest.fixture(scope="module")
def loop_run(small_config: Path, demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`savi loop --iterations 2 --bench videosavi_tiny_mc`: base, iter1 and iter2 evaluated as they exist."""
    import yaml

    tmp = tmp_path_factory.mktemp("loop-bench")
    raw = yaml.safe_load(small_config.read_text(encoding="utf-8"))
    raw["training"] = {"max_steps": 1, "per_device_batch_size": 2, "grad_accum": 1, "lr": 1e-3, "warmup_ratio": 0.0,
                       "dataloader_workers": 0, "lora_r": 4, "lora_alpha": 4}
    cfg = tmp / "loop.yaml"
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    out = tmp / "loop"
    res = savi("loop", "-m", "tiny-qwen2-vl", "-d", "org/loop", "--iterations", "2", "-c", str(cfg), "--data-root",
               str(demo_root), "-o", str(out), "--store", str(tmp / "store"), "--limit-videos", "2", "--bench",
               TINY_TASK)
    assert res.exit_code == 0, res.output
    assert "benchmarks of iter2: videosavi_tiny_mc" in res.output
    return out


def test_the_tiny_task_runs_end_to_end_with_a_tiny_model(loop_run: Path) -> None:
    out = loop_run / "bench"
    base = results(out, "base")
    score = base.scores[TINY_TASK]
    assert (base.model.wrapper, base.model.frames, base.model.iteration) == ("qwen2_vl", 32, 0)
    assert base.model.revision.startswith("local:")
    assert score.n == 8 and score.metric == "accuracy" and score.scale == "fraction"
    assert 0.0 <= score.value <= 1.0 and score.lmms_eval_version == "0.7.3" and score.task_version == "1"
    raw = json.loads((out / score.raw_results).read_text(encoding="utf-8"))
    assert raw["results"][TINY_TASK]["accuracy,none"] == pytest.approx(score.value)
    samples = (out / str(score.raw_samples)).read_text(encoding="utf-8").splitlines()
    assert len(samples) == 8 and all("accuracy" in json.loads(s) for s in samples)
    # the wrapper was asked for the paper's 32 frames
    argv = json.loads((out / "lmms-eval" / "base" / TINY_TASK / "command.json").read_text())["argv"]
    assert "max_num_frames=32" in argv[argv.index("--model_args") + 1]


def test_loop_bench_evaluates_each_iteration_and_reports(loop_run: Path) -> None:
    from huggingface_hub import ModelCard

    bench = loop_run / "bench"
    revisions = set()
    for label, iteration in (("base", 0), ("iter1", 1), ("iter2", 2)):
        r = results(bench, label)
        assert r.model.iteration == iteration and r.scores[TINY_TASK].n == 8
        revisions.add(r.model.revision)
    assert len(revisions) == 3  # three different sets of weights were evaluated
    assert results(bench, "iter2").model.name_or_path == str(loop_run / "iter2-model" / "merged")
    table = (bench / "report" / "table.md").read_text(encoding="utf-8")
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:5]] == ["base", "iter1", "iter2"]
    assert (bench / "report" / "scores.png").stat().st_size > 1000
    payload = json.loads((bench / "report" / "table.json").read_text(encoding="utf-8"))
    delta = payload["rows"][2]["scores"][TINY_TASK]["delta"]
    value = payload["rows"][2]["scores"][TINY_TASK]["percent"] - payload["rows"][0]["scores"][TINY_TASK]["percent"]
    assert delta == pytest.approx(value)
    # the merged model's own card now carries its scores as Hub evaluation results
    card = ModelCard.load(loop_run / "iter2-model" / "merged" / "README.md", ignore_metadata_errors=False)
    evals = card.data.eval_results
    assert len(evals) == 1 and evals[0].dataset_config == TINY_TASK
    assert evals[0].metric_value == pytest.approx(results(bench, "iter2").scores[TINY_TASK].percent, abs=0.01)
    assert "## Training data" in card.text and "## Evaluation" in card.text  # savi train's card, kept


def test_a_model_and_task_evaluated_once_is_not_evaluated_again(loop_run: Path) -> None:
    out = loop_run / "bench"
    raw = out / results(out, "iter1").scores[TINY_TASK].raw_results
    stamp = raw.stat().st_mtime_ns
    res = savi("bench", "-m", str(loop_run), "-i", "1", "--tasks", TINY_TASK, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "1 task(s) already there" in res.output
    assert raw.stat().st_mtime_ns == stamp


def test_answers_forced_to_the_right_letter_score_100(loop_run: Path) -> None:
    out = loop_run / "bench"
    oracle = Oracle(out / "tasks" / TINY_TASK)
    try:
        res = savi("bench", "-m", "oracle", "--base-url", oracle.url, "--tasks", TINY_TASK, "--out", str(out))
    finally:
        oracle.close()
    assert res.exit_code == 0, res.output
    score = results(out, "oracle").scores[TINY_TASK]
    assert oracle.unmatched == 0 and len(oracle.images) == 8
    assert set(oracle.images) == {32}  # 32 frames of each video reached the model
    assert (score.percent, score.n, score.stderr) == (100.0, 8, 0.0)
    assert results(out, "oracle").model.revision == "served:oracle"
    # the tiny random-weight models of the loop never name a letter: the same scoring gives them 0
    assert results(out, "iter2").scores[TINY_TASK].percent < 100.0


# --- bad input: one line, exit 2, nothing passed off as a result ------------------------------------------


def test_an_unknown_task_is_one_line(loop_run: Path) -> None:
    out = loop_run / "bench"
    res = savi("bench", "-m", "tiny-qwen2-vl", "--tasks", "mvbnch", "-i", "0", "--out", str(out))
    assert res.exit_code == 2
    assert "unknown LMMs-Eval task 'mvbnch'; did you mean mvbench" in one_error_line(res.output)


def test_results_of_another_model_in_the_output_folder_are_refused(loop_run: Path) -> None:
    out = loop_run / "bench"
    before = (out / "base.json").read_bytes()
    res = savi("bench", "-m", "someone", "--base-url", "http://127.0.0.1:9/v1", "--tasks", TINY_TASK, "--label",
               "base", "--out", str(out))
    assert res.exit_code == 2
    assert "holds results of another model" in one_error_line(res.output)
    assert (out / "base.json").read_bytes() == before


def test_task_data_not_reachable_offline_is_refused_before_running(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "hub_mc.yaml").write_text("task: hub_mc\ndataset_path: nobody/never-downloaded\ntest_split: test\n"
                                        "output_type: generate_until\n", encoding="utf-8")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    res = savi("bench", "-m", "tiny-qwen2-vl", "--tasks", "hub_mc", "--include-path", str(folder), "--out",
               str(tmp_path / "out"))
    assert res.exit_code == 2
    line = one_error_line(res.output)
    assert "task hub_mc cannot run here" in line and "nobody/never-downloaded" in line
    assert not (tmp_path / "out" / "tiny-qwen2-vl.json").exists()


@pytest.fixture
def broken_task(tmp_path: Path) -> Path:
    """A local task whose scoring raises on its third question: LMMs-Eval fails mid-task."""
    rows = [McRow(f"q{i}", str(tmp_path / "none.mp4"), f"Question number {i}?", ["yes", "no"], "A") for i in range(4)]
    folder = write_mc_task(tmp_path / "broken", "broken_mc", rows)
    utils = folder / "utils.py"
    utils.write_text(utils.read_text(encoding="utf-8").replace(
        "def doc_to_visual(doc: dict[str, Any]) -> list[str]:\n    return [doc[\"video\"]]",
        "def doc_to_visual(doc: dict[str, Any]) -> list[str]:\n    return []") + (
        "\n\n_original = process_results\n\n\ndef process_results(doc, results):  # noqa\n"
        "    if doc['id'] == 'q2':\n        raise RuntimeError('scoring exploded on q2')\n"
        "    return _original(doc, results)\n"), encoding="utf-8")
    return folder


def test_lmms_eval_failing_mid_task_keeps_finished_tasks_and_passes_off_nothing(
        broken_task: Path, tmp_path: Path) -> None:
    from videosavi.workflows.bench.results_file import save_results

    out = tmp_path / "out"
    ensure_tiny_task(out / "tasks")
    oracle = Oracle(out / "tasks" / TINY_TASK)
    done = BenchResults(label="oracle", model=BenchModel(name_or_path="oracle", revision="served:oracle",
                                                         wrapper="openai", frames=32, base_url=oracle.url),
                        scores={}, videosavi_version="0")
    done.scores[TINY_TASK] = BenchScore(task=TINY_TASK, metric="accuracy", value=1.0, scale="fraction", n=8,
                                        lmms_eval_version="0.7.3", evaluated_at="2026-12-06T00:00:00+00:00",
                                        seconds=1.0, raw_results="lmms-eval/oracle/x/r_results.json")
    save_results(out / "oracle.json", done)
    try:
        res = savi("bench", "-m", "oracle", "--base-url", oracle.url, "--tasks", TINY_TASK, "broken_mc",
                   "--include-path", str(broken_task), "--out", str(out))
    finally:
        oracle.close()
    assert res.exit_code == 2
    line = one_error_line(res.output)
    assert "LMMs-Eval failed on task broken_mc" in line and "scoring exploded on q2" in line
    assert results(out, "oracle") == done  # the finished task is kept, the failed one is not a score
    assert (out / "lmms-eval" / "oracle" / "broken_mc" / "lmms-eval.log").is_file()


def test_a_model_lmms_eval_cannot_load_is_one_line(tmp_path: Path) -> None:
    """Weights that do not fit the config (a wider hidden size than they were saved with): every file reads,
    and LMMs-Eval fails loading them; the line says so."""
    import shutil

    from videosavi.builders.generate.models.tiny import ensure_tiny_model

    broken = Path(shutil.copytree(ensure_tiny_model("tiny-qwen2-vl"), tmp_path / "wider"))
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config["text_config"]["hidden_size"] = 128
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    out = tmp_path / "out"
    res = savi("bench", "-m", str(broken), "--tasks", TINY_TASK, "--out", str(out))
    assert res.exit_code == 2
    assert f"LMMs-Eval could not load model {broken}" in one_error_line(res.output)
    assert not (out / "wider.json").exists()

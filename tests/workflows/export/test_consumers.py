"""Every consumer of a real published revision gets the right data: a small demo build (the tiny
Qwen2-VL, real videos), published to a local store and served by the real hub server, read with stock
`datasets.load_dataset` in a fresh process.

- the default config's `prompt` is exactly the messages a0 was generated from (the question);
- the default config goes through TRL's own data preparation (`maybe_extract_prompt`,
  `maybe_apply_chat_template`, `DPOTrainer`'s tokenisation) with the question in every prompt and the
  answers intact (it is TRL's conversational preference form);
- the default config with `VideoDPOCollator` trains under that same prompt;
- docs/export.md's pandas / polars / DuckDB block runs as written against the hub server;
- `savi export` (through `--endpoint`, roots from `--config/--data-root`) writes ms-swift rows whose
  STAR clips are cut to exactly the span the builder used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
from typer.testing import CliRunner

from tests.helpers.factories import read_pairs
from tests.workflows.export.test_export import check_swift_row
from videosavi.builders.decode.frame_indices import clip_frame_range
from videosavi.builders.decode.pyav_reader import PyAVReader
from videosavi.builders.generate.models.tiny import ensure_tiny_model
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.cli import app
from videosavi.hub.publish import publish_run
from videosavi.hub.serve import HubServer
from videosavi.training.video_roots import roots_from_config
from videosavi.workflows.demo import load_in_fresh_process

REPO = "org/videosavi-consumers"
ROOT = Path(__file__).resolve().parents[3]

_TRL_SCRIPT = r"""
from videosavi.compat import ensure_torchvision_importable
ensure_torchvision_importable()  # this CPU machine's torchvision build; not part of what a user runs
import json, sys
import datasets
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import DPOConfig, DPOTrainer
from trl.data_utils import is_conversational, maybe_apply_chat_template, maybe_extract_prompt

from videosavi.training import VideoDPOCollator

repo, rev, model_dir, out, roots = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
rows = datasets.load_dataset(repo, revision=rev, split="train")  # the DEFAULT config, nothing else
processor = AutoProcessor.from_pretrained(model_dir)
tok = processor.tokenizer

extracted = rows.map(maybe_extract_prompt)
templated = [maybe_apply_chat_template(dict(ex), processor) for ex in extracted]
trainer = DPOTrainer(model=AutoModelForImageTextToText.from_pretrained(model_dir),
                     args=DPOConfig(output_dir=out, report_to=[], use_cpu=True, bf16=False, max_length=None),
                     train_dataset=rows, processing_class=tok)
prepared = trainer.train_dataset

# the same config with the public collator: TRL's vision path, the frames decoded per batch
with_images = rows.add_column("images", [[]] * len(rows))
video_trainer = DPOTrainer(
    model=AutoModelForImageTextToText.from_pretrained(model_dir),
    args=DPOConfig(output_dir=out + "-video", report_to=[], use_cpu=True, bf16=False, max_length=None,
                   remove_unused_columns=False, per_device_train_batch_size=2),
    train_dataset=with_images, processing_class=processor,
    data_collator=VideoDPOCollator(processor, video_roots=roots, resize=(64, 64)))
batch = video_trainer.data_collator([dict(r) for r in with_images.select(range(2))])
prompt_ids = [ids[mask == 0] for ids, mask in zip(batch["input_ids"][:2], batch["completion_mask"][:2])]

print(json.dumps({
    "questions": list(rows["question"]), "chosen": list(rows["chosen_text"]),
    "rejected": list(rows["rejected_text"]), "prompts": list(rows["prompt"]), "pair_ids": list(rows["pair_id"]),
    "conversational": [is_conversational(dict(r)) for r in rows],
    "extracted_prompts": list(extracted["prompt"]), "extracted_chosen": list(extracted["chosen"]),
    "extracted_rejected": list(extracted["rejected"]),
    "templated": [{k: t[k] for k in ("prompt", "chosen", "rejected")} for t in templated],
    "prepared_prompts": [tok.decode(ids) for ids in list(prepared["prompt_ids"])],
    "prepared_chosen": [tok.decode(ids) for ids in list(prepared["chosen_ids"])],
    "prepared_rejected": [tok.decode(ids) for ids in list(prepared["rejected_ids"])],
    "collated_prompts": [tok.decode(ids) for ids in prompt_ids],
}))
"""


@pytest.fixture(scope="module")
def published(small_reference: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("consumers") / "store"
    publish_run(small_reference, REPO, store=store)
    return {"store": store, "run": small_reference, "pairs": read_pairs(small_reference)}


@pytest.fixture(scope="module")
def server(published: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    with HubServer(published["store"], log_path=tmp_path_factory.mktemp("hub-log") / "access.log") as srv:
        yield srv


def test_the_default_prompt_is_what_a0_was_generated_from(published: dict[str, Any]) -> None:
    pairs = published["pairs"]
    assert pairs
    prompts = PromptSet.load(Path(published["run"]) / "prompts")
    for p in pairs:
        assert p.prompt is not None
        assert [m.model_dump(exclude_none=True) for m in p.prompt] == answer_messages(
            prompts, p.question, len(p.frame_indices))
        assert p.prompt[0].content[1].text == p.question  # the bundled answer template is the bare question


def test_trl_reads_the_default_config_with_the_question_in_every_prompt(
        published: dict[str, Any], server: HubServer, small_config: Path, demo_root: Path, tmp_path: Path) -> None:
    """Rows of the DEFAULT config, loaded with stock `datasets.load_dataset` through the hub server, go
    through TRL's own `maybe_extract_prompt` -> `maybe_apply_chat_template` and `DPOTrainer`'s
    tokenisation with the question in every prompt and both answers intact."""
    roots = {k: str(v) for k, v in roots_from_config(small_config, demo_root).items()}
    env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    for var in ("HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-c", _TRL_SCRIPT, REPO, "iter1", str(ensure_tiny_model("tiny-qwen2-vl")),
         str(tmp_path / "dpo"), json.dumps(roots)],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    pairs = published["pairs"]
    questions = got["questions"]
    assert got["pair_ids"] == [p.pair_id for p in pairs] and len(questions) == len(pairs) > 0
    assert got["chosen"] == [p.chosen for p in pairs] and got["rejected"] == [p.rejected for p in pairs]
    for prompt, q in zip(got["prompts"], questions, strict=True):
        assert prompt == [{"role": "user", "content": [{"type": "video", "text": None}, {"type": "text", "text": q}]}]
    assert all(got["conversational"])
    reached = 0
    for i, q in enumerate(questions):
        # maybe_extract_prompt keeps the stored prompt and leaves the answers whole
        assert got["extracted_prompts"][i] == got["prompts"][i]
        assert got["extracted_chosen"][i] == [{"role": "assistant", "content": [{"type": "text", "text":
                                                                                 got["chosen"][i]}]}]
        assert got["extracted_rejected"][i][0]["content"][0]["text"] == got["rejected"][i]
        templated = got["templated"][i]
        assert q in templated["prompt"] and "<|video_pad|>" in templated["prompt"]
        assert got["chosen"][i] in templated["chosen"] and got["rejected"][i] in templated["rejected"]
        assert q not in templated["chosen"] and q not in templated["rejected"]
        # and DPOTrainer's own tokenisation of the same rows
        assert q in got["prepared_prompts"][i]
        assert got["chosen"][i] in got["prepared_chosen"][i] and got["rejected"][i] in got["prepared_rejected"][i]
        reached += bool(templated["prompt"].strip()) and q in got["prepared_prompts"][i]
    assert reached == len(pairs)
    print(f"\n{reached} of {len(pairs)} rows reach TRL with a non-empty prompt holding their question")
    # the same config with VideoDPOCollator: the prompt the collator builds holds the question
    for text, q in zip(got["collated_prompts"], questions[:2], strict=True):
        assert q in text and "<|video_pad|>" in text


def test_the_pandas_polars_duckdb_block_of_docs_export_runs_as_written(published: dict[str, Any], server: HubServer,
                                                                       tmp_path: Path) -> None:
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "import duckdb" in b)
    m = re.search(r"# settings\n(?P<body>.*?)# end of settings\n", block, re.S)
    assert m is not None and "REPO, REVISION" in m.group("body"), "the block lost its settings"
    report = ("\nimport json as _json\n"
              "print(_json.dumps({'pandas': sorted(frame['pair_id']), 'polars': sorted(pairs['pair_id'].to_list()), "
              "'polars_chosen': sorted(pairs['chosen_text'].to_list()), 'duckdb': by_type}))\n")
    script = tmp_path / "block.py"
    script.write_text(f"REPO, REVISION = {REPO!r}, 'iter1'\n" + block[m.end():] + report, encoding="utf-8")
    env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for var in ("HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    pairs = published["pairs"]
    assert got["pandas"] == got["polars"] == sorted(p.pair_id for p in pairs)
    assert got["polars_chosen"] == sorted(p.chosen for p in pairs)
    by_type: dict[str, int] = {}
    for p in pairs:
        by_type[p.question_type] = by_type.get(p.question_type, 0) + 1
    assert got["duckdb"] == [[k, v] for k, v in sorted(by_type.items())]


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest switches huggingface_hub offline; these tests talk to a loopback server."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_savi_export_through_the_endpoint_cuts_star_clips_to_the_builders_span(
        published: dict[str, Any], server: HubServer, small_config: Path, demo_root: Path, tmp_path: Path,
        online: None) -> None:
    out = tmp_path / "swift"
    res = CliRunner().invoke(app, ["export", "-d", REPO, "-r", "iter1", "--endpoint", server.endpoint, "-f", "swift",
                                   "-o", str(out), "-c", str(small_config), "--data-root", str(demo_root),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    pairs = published["pairs"]
    assert len(rows) == len(pairs) and f"{len(pairs)} of {len(pairs)} pairs" in res.output
    roots = roots_from_config(small_config, demo_root)
    clipped = 0
    for row, pair in zip(rows, pairs, strict=True):
        check_swift_row(row)
        assert row["messages"][0]["content"] == "<video>" + pair.question
        (video,) = row["videos"]
        if pair.clip_start is None and pair.clip_end is None:
            assert video == str(roots[pair.source] / pair.video_path)
            continue
        clipped += 1
        assert video.startswith(str(out / "clips" / pair.source))
        with PyAVReader(roots[pair.source] / pair.video_path) as src, PyAVReader(video) as cut:
            span = clip_frame_range(src.num_frames, src.fps, pair.clip_start, pair.clip_end)
            assert cut.num_frames == len(span) and cut.fps == pytest.approx(src.fps, rel=1e-3)
            assert span[0] <= pair.frame_indices[0] and pair.frame_indices[-1] <= span[-1]
    assert clipped, "the demo's STAR rows have clip spans"


def test_the_demo_loads_in_full_streamed_and_refuses_a_wrong_revision(published: dict[str, Any], server: HubServer,
                                                                       tmp_path: Path) -> None:
    got = load_in_fresh_process(REPO, "iter1", server.endpoint, tmp_path / "hf")
    assert got.rows == got.streamed == len(published["pairs"])
    assert got.error is not None and got.error.startswith("DatasetNotFoundError: Revision 'iter9' doesn't exist")

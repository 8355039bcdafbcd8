"""The public video DPO API: `VideoDPOCollator` and `load_row_frames` on rows as published, and the
docs/training.md example (stock TRL `DPOTrainer` on `load_dataset` through `savi hub serve`) run as written."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.training.test_training import INDICES, REPO, Published, _publish
from videosavi.builders.generate.models.tiny import ensure_tiny_model
from videosavi.compat import ensure_torchvision_importable
from videosavi.errors import TrainingDataError
from videosavi.hub.load import load_revision
from videosavi.hub.serve import HubServer
from videosavi.training import VideoDPOCollator, load_row_frames
from videosavi.training.prompt import training_prompt
from videosavi.training.video_frames import decode_row_frames

ensure_torchvision_importable()

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "training.md"
SETTINGS = re.compile(r"# settings\n(?P<body>.*?)# end of settings\n", re.S)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> Published:
    return _publish(tmp_path_factory.mktemp("collator"))


@pytest.fixture(scope="module")
def rows(published: Published, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Rows exactly as `load_dataset` gives them: no `video_file`, only source + relative path."""
    ds = load_revision(REPO, "iter1", store=published.store, cache_dir=tmp_path_factory.mktemp("cache"))
    return [dict(r) for r in ds]


@pytest.fixture(scope="module")
def processor(videosavi_cache: str) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(ensure_tiny_model("tiny-qwen2-vl"))


def test_load_row_frames_reads_the_stored_indices_under_the_roots(published: Published,
                                                                 rows: list[dict[str, Any]]) -> None:
    row = rows[0]
    frames = load_row_frames(row, published.roots)
    expected = decode_row_frames(published.roots[row["source"]] / row["video_path"], INDICES)
    assert frames.shape[0] == len(INDICES) and np.array_equal(frames, expected)
    assert load_row_frames(row, published.roots, resize=(32, 48)).shape == (len(INDICES), 32, 48, 3)
    with pytest.raises(TrainingDataError, match="no video root for source"):
        load_row_frames(row, {"elsewhere": published.root})
    with pytest.raises(TrainingDataError, match="not a safe relative path"):
        load_row_frames({**row, "video_path": "../../etc/passwd"}, published.roots)
    with pytest.raises(TrainingDataError, match="cannot decode"):
        load_row_frames({**row, "video_path": "no-such-video.mp4"}, published.roots)


def test_collator_takes_published_rows_and_a_conversational_prompt_column(published: Published,
                                                                          rows: list[dict[str, Any]],
                                                                          processor: Any) -> None:
    collator = VideoDPOCollator(processor, video_roots=published.roots)
    assert collator.mode == "video"
    row = rows[0]
    built = collator([row])  # the published `prompt` column: the answer-stage messages a0 was generated from
    same = training_prompt(row["question"], len(INDICES))
    assert torch.equal(collator([{k: v for k, v in row.items() if k != "prompt"}])["input_ids"],
                       built["input_ids"])  # an older row without it: the same prompt, rendered from the question
    assert torch.equal(collator([{**row, "prompt": same}])["input_ids"], built["input_ids"])
    # as a parquet round trip returns it: every content block carries every key, unused ones None
    stored = [{"role": "user", "content": [{"type": "video", "text": None},
                                           {"type": "text", "text": same[0]["content"][1]["text"]}]}]
    assert torch.equal(collator([{**row, "prompt": stored}])["input_ids"], built["input_ids"])
    own = [{"role": "user", "content": "Which object moves first?"}]  # no video block: one is added
    batch = collator([{**row, "prompt": own}])
    assert not torch.equal(batch["input_ids"][:, :built["input_ids"].shape[1]], built["input_ids"])
    text = processor.tokenizer.decode(batch["input_ids"][0])
    assert "Which object moves first?" in text and "Question:" not in text
    assert batch["pixel_values_videos"].shape == built["pixel_values_videos"].shape  # the frames went in
    with pytest.raises(TrainingDataError, match="neither a conversational `prompt` nor a `question`"):
        collator([{k: v for k, v in row.items() if k not in ("question", "prompt")}])


def _doc_example() -> tuple[str, str]:
    """(settings block, the rest) of the docs/training.md example."""
    text = DOC.read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "# settings" in b)
    m = SETTINGS.search(block)
    assert m is not None, "the example lost its settings block"
    return m.group("body"), block[m.end():]


@pytest.fixture()
def server(published: Published, tmp_path: Path) -> Iterator[HubServer]:
    with HubServer(published.store, log_path=tmp_path / "access.log") as srv:
        yield srv


def test_the_docs_example_trains_stock_trl_through_the_hub_server(published: Published, server: HubServer,
                                                                  tmp_path: Path) -> None:
    settings, body = _doc_example()
    names = {name.strip() for line in settings.splitlines() if "=" in line
             for name in line.split("=", 1)[0].split(",")}
    ours = {"REPO": REPO, "REVISION": "iter1", "VIDEO_ROOTS": {k: str(v) for k, v in published.roots.items()},
            "MODEL": str(ensure_tiny_model("tiny-qwen2-vl")), "OUTPUT": str(tmp_path / "out"), "MAX_STEPS": 2}
    assert names == set(ours), "the example's settings changed: update this test"
    prelude = "".join(f"{k} = {v!r}\n" for k, v in ours.items())  # our settings; the rest runs as written
    report = ("\nimport json as _json\n"
              "print(_json.dumps({'step': trainer.state.global_step, "
              "'losses': [h.get('loss', h.get('train_loss')) for h in trainer.state.log_history "
              "if 'loss' in h or 'train_loss' in h]}))\n")
    env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    for var in ("HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        env.pop(var, None)
    script = tmp_path / "example.py"
    script.write_text(prelude + body + report, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["step"] == 2
    assert got["losses"] and all(math.isfinite(x) for x in got["losses"])
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()

"""Local video multiple-choice tasks in LMMs-Eval's own task format, and the bundled tiny one.

A task folder holds `<task>.yaml` (LMMs-Eval's task config: a `json` dataset of local files, generation
until a short answer, accuracy), `utils.py` (a copy of `mc_task_utils.py`) and `data.jsonl`; pass the
folder to LMMs-Eval with `--include_path` (`savi bench --include-path`). No Hub access: the YAML points
at the absolute path of its data file, and it does not ask LMMs-Eval to fetch videos.

`videosavi_tiny_mc` is the bundled task: eight synthetic videos of moving shapes (the demo's generator)
and one question each about the colour of the square, whose true answer the generator knows. It runs
end to end in seconds on a CPU with a tiny model: the machinery of `savi bench` on a fresh clone, with
no benchmark data. Its questions differ in their options' order, so each row's text is unique.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from videosavi.errors import BenchError
from videosavi.workflows.bench import mc_task_utils

TINY_TASK = "videosavi_tiny_mc"
TINY_VERSION = "1"
_COLOURS = {(230, 57, 70): "red", (42, 157, 143): "teal", (233, 196, 106): "yellow", (69, 123, 157): "blue",
            (244, 162, 97): "orange", (131, 56, 236): "purple"}
# 6 s at 8 fps: more frames than the 32 asked for (LMMs-Eval's openai wrapper refuses a video with fewer)
_FRAMES, _FPS, _WIDTH, _HEIGHT = 48, 8, 96, 64
POST_PROMPT = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class McRow:
    id: str
    video: str  # absolute path
    question: str
    options: list[str]
    answer: str  # the right letter

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "video": self.video, "question": self.question, "options": self.options,
                "answer": self.answer}


def task_yaml(task: str, data_file: Path, version: str, max_new_tokens: int = 16) -> str:
    return "\n".join([
        f"task: {task}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(str(data_file))}",
        "test_split: test",
        "output_type: generate_until",
        "doc_to_visual: !function utils.doc_to_visual",
        "doc_to_text: !function utils.doc_to_text",
        "doc_to_target: answer",
        "process_results: !function utils.process_results",
        "generation_kwargs:",
        f"  max_new_tokens: {max_new_tokens}",
        "  temperature: 0",
        "  do_sample: false",
        "metric_list:",
        "  - metric: accuracy",
        "    aggregation: mean",
        "    higher_is_better: true",
        "lmms_eval_specific_kwargs:",
        "  default:",
        '    pre_prompt: ""',
        f"    post_prompt: {json.dumps(POST_PROMPT)}",
        "metadata:",
        f"  version: {json.dumps(version)}",
        "",
    ])


def write_mc_task(folder: Path, task: str, rows: list[McRow], version: str = "1") -> Path:
    """Write the task's YAML, utils.py and data.jsonl into `folder` (created); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows), encoding="utf-8")
    shutil.copyfile(mc_task_utils.__file__, folder / "utils.py")
    (folder / f"{task}.yaml").write_text(task_yaml(task, data.resolve(), version), encoding="utf-8")
    return folder


def _tiny_rows(videos: Path, n: int) -> list[McRow]:
    from videosavi.builders.sources.synthetic_video import random_shapes, write_video

    rows: list[McRow] = []
    seen: set[str] = set()
    names = list(_COLOURS.values())
    for i in range(n):
        seed = 100 + i
        path = write_video(videos / f"shapes_{i:02d}.mp4", num_frames=_FRAMES, fps=_FPS, width=_WIDTH, height=_HEIGHT,
                           seed=seed, barcode=False)
        # write_video draws its shapes first from a generator of this seed: the same call gives them back
        shapes = random_shapes(np.random.default_rng(seed), _WIDTH, _HEIGHT)
        truth = _COLOURS[next(s.colour for s in shapes if s.kind == "box")]
        rng = np.random.default_rng(1000 + i)
        while True:
            options = [truth, *rng.choice([c for c in names if c != truth], size=3, replace=False).tolist()]
            rng.shuffle(options)
            question = "What colour is the square that moves in the video?"
            text = question + "|" + "|".join(options)
            if text not in seen:
                break
        seen.add(text)
        rows.append(McRow(f"shapes_{i:02d}", str(path.resolve()), question, [str(o) for o in options],
                          mc_task_utils.LETTERS[options.index(truth)]))
    return rows


def ensure_tiny_task(root: Path, n: int = 8) -> Path:
    """The bundled tiny task under `root/<task>` (written once; a complete folder is reused)."""
    folder = root / TINY_TASK
    marker = folder / "videosavi-task.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("version") == TINY_VERSION:
                return folder
        except ValueError:
            pass
    elif folder.exists():
        raise BenchError(f"{folder} exists and is not the bundled {TINY_TASK} task: move it, or use another --out")
    tmp = root / f".{TINY_TASK}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    rows = _tiny_rows(tmp / "videos", n)
    # the rows name their videos where they will live once the folder is renamed into place
    final_rows = [McRow(r.id, str((folder / "videos" / Path(r.video).name).resolve()), r.question, r.options,
                        r.answer) for r in rows]
    write_mc_task(tmp, TINY_TASK, final_rows, version=TINY_VERSION)
    (tmp / f"{TINY_TASK}.yaml").write_text(task_yaml(TINY_TASK, (folder / "data.jsonl").resolve(), TINY_VERSION),
                                           encoding="utf-8")
    (tmp / "videosavi-task.json").write_text(json.dumps({"task": TINY_TASK, "version": TINY_VERSION}),
                                             encoding="utf-8")
    if folder.exists():  # an older version of the task, ours by its marker (checked above)
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder

"""Rows built before the record carried `prompt` (builder g2 and older) stay readable by every reader.

Two cases: a run directory built then, published now (its shards gain a null `prompt`), and a revision
published then (no `prompt` column at all, as the store holds it). Each reader renders the prompt from
the revision's answer template and the question instead: `savi train`'s data preparation, the
published `default` and `swift` configs, `savi export`, the statistics.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.factories import make_pair, make_pairs, write_run_dir
from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.builders.sources.synthetic_video import write_video
from videosavi.curation.stats import pairs_frame, summarize
from videosavi.hashing import sha256_file
from videosavi.hub.load import load_revision
from videosavi.hub.publish import publish_run
from videosavi.hub.store import GitStore
from videosavi.hub.validate import missing_columns, validate_run_dir
from videosavi.training.data import prepare_training_data
from videosavi.workflows.export import ExportOptions, export_revision

REPO = "org/videosavi-old"
SOURCES = ("star", "vidal", "webvid")
INDICES = [0, 3, 6, 9]


@pytest.fixture(scope="module")
def old_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], list]:
    """A finished run directory whose shards were written without the `prompt` column, with real videos."""
    base = tmp_path_factory.mktemp("old")
    roots = {s: base / "videos" / s for s in SOURCES}
    pairs = []
    for n, p in enumerate(make_pairs(n_videos=3, per_video=2, sources=SOURCES)):
        path = roots[p.source] / p.video_path
        if not path.exists():
            write_video(path, num_frames=12, fps=6, width=96, height=64, seed=n + 1)
        fields = p.model_dump(exclude={"pair_id", "video_uid", "severity", "chosen_words", "rejected_words",
                                       "diff_spans", "created_at", "prompt"})
        fields.update(video_sha256=sha256_file(path), video_num_frames=12, frame_indices=INDICES,
                      frame_timestamps=[i / 6 for i in INDICES], prompt=None)
        pairs.append(make_pair(**fields))
    run = write_run_dir(base / "run", pairs)
    for shard in sorted((run.path / "data").glob("*.parquet")):
        pq.write_table(pq.read_table(shard).drop_columns(["prompt"]), shard)
        assert missing_columns(shard) == ["prompt"]
    return run.path, roots, pairs


def test_an_old_run_directory_validates_publishes_and_renders_its_prompt(old_run: tuple, tmp_path: Path) -> None:
    run, _roots, pairs = old_run
    assert validate_run_dir(run).table.column("prompt").null_count == len(pairs)
    store = tmp_path / "store"
    publish_run(run, REPO, store=store)
    default = load_revision(REPO, "iter1", store=store, cache_dir=tmp_path / "cache")
    assert list(default["pair_id"]) == [p.pair_id for p in pairs]
    swift = load_revision(REPO, "iter1", store=store, config_name="swift", cache_dir=tmp_path / "cache")
    for t, s, p in zip(default, swift, pairs, strict=True):  # the published prompt is rendered for old rows
        rendered = answer_messages(PromptSet.load(), p.question, len(INDICES))
        assert [{**m, "content": [{k: v for k, v in b.items() if v is not None} for b in m["content"]]}
                for m in t["prompt"]] == rendered
        assert s["messages"][0]["content"] == "<video>" + p.question


def test_a_revision_published_without_the_column_is_read_by_training_export_and_stats(
        old_run: tuple, tmp_path: Path) -> None:
    run, roots, pairs = old_run
    staging = tmp_path / "staging"
    shutil.copytree(run / "data", staging / "data")
    shutil.copytree(run / "prompts", staging / "prompts")
    shutil.copy(run / "build.json", staging / "build.json")
    (staging / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                       "    path: data/train-*.parquet\n---\n# an old revision\n", encoding="utf-8")
    store = tmp_path / "store"
    GitStore(store).publish(REPO, "iter1", staging, force=False, message="old", tag_message="old")
    ds = load_revision(REPO, "iter1", store=store, cache_dir=tmp_path / "cache")
    assert "prompt" not in ds.column_names

    data = prepare_training_data(ds, roots)
    assert data.counts.kept_rows == len(pairs) and all("prompt" not in r for r in data.rows)
    assert summarize(pairs_frame(ds)).n_pairs == len(pairs)

    out = tmp_path / "export"
    result = export_revision(ExportOptions(dataset=REPO, revision="iter1", format="swift", out=out, store=store,
                                           video_roots=[f"{s}={d}" for s, d in roots.items()]))
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert result.rows == len(pairs)
    assert [r["messages"][0]["content"] for r in rows] == ["<video>" + p.question for p in pairs]

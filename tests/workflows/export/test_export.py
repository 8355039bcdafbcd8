"""`savi export`: a published revision as ms-swift / LLaMA-Factory files with absolute, checked media.

Real videos (frame-index barcodes) and a real local store. STAR rows carry a clip span, so the cut
clips and the exported frames can be checked frame by frame. LLaMA-Factory's pins clash with ours
(transformers, datasets, trl, peft), so its format is checked against golden files and its own
rules; ms-swift cannot be installed beside our pins either (see `test_ms_swift_loader_reads_the_export`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.helpers.factories import (
    STAR_CLIP,
    VIDEO_FPS,
    VIDEO_FRAMES,
    VIDEO_H,
    VIDEO_W,
    pairs_on_real_videos,
    write_run_dir,
)
from tests.helpers.videos import read_barcode
from videosavi.builders.decode.pyav_reader import PyAVReader
from videosavi.builders.sources.synthetic_video import write_video
from videosavi.cli import app
from videosavi.errors import ExportError, TrainingDataError
from videosavi.hub.publish import publish_run
from videosavi.workflows.export import ExportOptions, export_revision
from videosavi.workflows.export.media import clip_rel, safe_name
from videosavi.workflows.export.rows import IMAGE_TAG, VIDEO_TAG, tag_count

REPO = "org/videosavi-export"
SOURCES = ("star", "vidal", "webvid")
CLIP = STAR_CLIP  # STAR rows: frames 4..12 at 8 fps
GOLDEN = Path(__file__).parent / "golden" / "export"


@dataclass
class Published:
    base: Path
    roots: dict[str, Path]
    store: Path
    pairs: list[Any]


def _publish(base: Path) -> Published:
    """Two pairs on each of three videos; the STAR video's pairs are about a clip of it."""
    roots, pairs = pairs_on_real_videos(base, SOURCES)
    run = write_run_dir(base / "run", pairs)
    store = base / "store"
    publish_run(run.path, REPO, store=store)
    return Published(base=base, roots=roots, store=store, pairs=pairs)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> Published:
    return _publish(tmp_path_factory.mktemp("export"))


def _export(pub: Published, out: Path, fmt: str = "swift", **over: Any) -> Any:
    fields: dict[str, Any] = dict(dataset=REPO, revision="iter1", format=fmt, out=out, store=pub.store,
                                  video_roots=[f"{s}={d}" for s, d in pub.roots.items()])
    fields.update(over)
    return export_revision(ExportOptions(**fields))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _barcodes_of_video(path: Path) -> list[int]:
    with PyAVReader(path) as reader:
        return [read_barcode(f) for f in reader.read(list(range(reader.num_frames)))]


def check_swift_row(row: dict[str, Any]) -> None:
    """ms-swift's documented DPO row (Custom-dataset.md): `messages` ending in the chosen assistant turn,
    `rejected_response`, media as absolute existing paths with one tag per entry."""
    assert set(row) <= {"messages", "rejected_response", "images", "videos"} and "messages" in row
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["user", "assistant"] and all(isinstance(m["content"], str) for m in row["messages"])
    assert isinstance(row["rejected_response"], str) and row["rejected_response"].strip()
    text = "".join(m["content"] for m in row["messages"] if m["role"] == "user")
    assert tag_count(text, VIDEO_TAG) == len(row.get("videos", []))
    assert tag_count(text, IMAGE_TAG) == len(row.get("images", []))
    for media in row.get("videos", []) + row.get("images", []):
        assert os.path.isabs(media) and os.path.isfile(media), media


def check_llamafactory_row(row: dict[str, Any]) -> None:
    """LLaMA-Factory's sharegpt ranking row (data/README.md): an odd number of turns starting with `human`,
    `chosen`/`rejected` single `gpt` turns, as many `<video>` tags as `videos` entries (its mm_plugin
    `_validate_messages` raises otherwise); an entry is a file or a list of frame images."""
    turns = row["conversations"]
    assert len(turns) % 2 == 1 and [t["from"] for t in turns] == ["human"]
    assert row["chosen"]["from"] == row["rejected"]["from"] == "gpt"
    assert row["chosen"]["value"].strip() and row["rejected"]["value"].strip()
    assert sum(tag_count(t["value"], VIDEO_TAG) for t in turns) == len(row["videos"])
    for video in row["videos"]:
        for media in video if isinstance(video, list) else [video]:
            assert os.path.isabs(media) and os.path.isfile(media), media


def test_swift_rows_point_at_checked_files_and_clips_are_cut_to_their_span(published: Published,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "swift"
    result = _export(published, out)
    rows = _jsonl(out / "train.jsonl")
    assert result.rows == result.total_rows == len(rows) == len(published.pairs) and result.skipped == {}
    assert (out / "pair_ids.txt").read_text().split() == [p.pair_id for p in published.pairs]
    assert (out / "skipped.jsonl").read_text() == ""
    assert result.clips_cut == 1  # two STAR rows, one clip
    for row, pair in zip(rows, published.pairs, strict=True):
        check_swift_row(row)
        assert row["messages"][0]["content"] == VIDEO_TAG + pair.question  # the bundled template: the bare question
        assert row["messages"][1]["content"] == pair.chosen and row["rejected_response"] == pair.rejected
        (video,) = row["videos"]
        if pair.source == "star":
            assert video == str(out / clip_rel("star", pair.video_id, *CLIP))
            assert _barcodes_of_video(Path(video)) == list(range(4, 13))  # exactly the span, ends included
        else:
            assert video == str(published.roots[pair.source] / pair.video_path)
    summary = json.loads((out / "export.json").read_text())
    assert summary["rows"] == len(rows) and summary["sha"] == result.sha and summary["format"] == "swift"
    assert not list(tmp_path.glob(".swift.export-*"))  # the staging folder became OUT


def test_frames_are_the_stored_frames_as_images(published: Published, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    _export(published, out, "llamafactory", clips="frames", image_format="png")
    lf_rows = _jsonl(out / "train.jsonl")
    for row, pair in zip(lf_rows, published.pairs, strict=True):
        check_llamafactory_row(row)
        (frames,) = row["videos"]  # one video given as its frames
        assert [read_barcode(np.asarray(Image.open(f).convert("RGB"))) for f in frames] == pair.frame_indices
        assert all(f.endswith(".png") for f in frames)
    swift = tmp_path / "swift-frames"
    result = _export(published, swift, clips="frames")
    assert result.frame_folders == 3  # one per distinct (video, indices), shared by its rows
    for row, pair in zip(_jsonl(swift / "train.jsonl"), published.pairs, strict=True):
        check_swift_row(row)
        assert "videos" not in row and len(row["images"]) == len(pair.frame_indices)
        assert row["messages"][0]["content"] == IMAGE_TAG * len(pair.frame_indices) + pair.question


def _copy_roots(pub: Published, dest: Path) -> dict[str, Path]:
    roots = {s: dest / s for s in SOURCES}
    for s in SOURCES:
        shutil.copytree(pub.roots[s], roots[s])
    return roots


def test_missing_and_changed_videos_are_reported_and_left_out(published: Published, tmp_path: Path) -> None:
    roots = _copy_roots(published, tmp_path / "videos")
    vidal = next(p for p in published.pairs if p.source == "vidal")
    webvid = next(p for p in published.pairs if p.source == "webvid")
    (roots["vidal"] / vidal.video_path).unlink()
    with (roots["webvid"] / webvid.video_path).open("ab") as f:
        f.write(b"\0")  # same frames, other bytes: the sha256 no longer matches
    specs = [f"{s}={d}" for s, d in roots.items()]
    out = tmp_path / "out"
    result = _export(published, out, video_roots=specs, max_missing_share=1.0)
    assert result.rows == 2 and result.skipped == {"missing_file": 2, "sha256_mismatch": 2}
    report = _jsonl(out / "skipped.jsonl")
    assert {(r["pair_id"], r["reason"]) for r in report} == (
        {(p.pair_id, "missing_file") for p in published.pairs if p.source == "vidal"}
        | {(p.pair_id, "sha256_mismatch") for p in published.pairs if p.source == "webvid"})
    assert all(r["file"] and r["video_path"] for r in report)
    assert (out / "pair_ids.txt").read_text().split() == [p.pair_id for p in published.pairs if p.source == "star"]
    # above the allowed share: one error, and nothing at OUT
    with pytest.raises(ExportError, match=r"4 of 6 pairs .* missing_file: 2, sha256_mismatch: 2"):
        _export(published, tmp_path / "refused", video_roots=specs)
    assert not (tmp_path / "refused").exists() and not list(tmp_path.glob(".refused*"))


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["export", *args])


def _roots_args(specs: list[str]) -> list[str]:
    return [arg for spec in specs for arg in ("--video-root", spec)]


def test_bad_input_is_one_line_exit_2_and_leaves_nothing(published: Published, tmp_path: Path) -> None:
    roots = _roots_args([f"{s}={d}" for s, d in published.roots.items()])
    base = ["-d", REPO, "-r", "iter1", "--store", str(published.store), "--no-progress"]
    out = tmp_path / "out"
    wrong = _copy_roots(published, tmp_path / "wrong")
    for p in published.pairs:  # every file replaced by another video: all hashes differ
        write_video(wrong[p.source] / p.video_path, num_frames=VIDEO_FRAMES, fps=VIDEO_FPS, width=VIDEO_W,
                    height=VIDEO_H, seed=99)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        ([*base, "-f", "swift", "-o", str(out), *_roots_args(["star=/no/such/dir"]), *roots[2:]],
         "video root of source 'star' is not a folder"),
        ([*base, "-f", "swift", "-o", str(blocker / "out"), *roots],
         "cannot write --out"),
        ([*base, "-f", "swift", "-o", str(out), *_roots_args([f"{s}={d}" for s, d in wrong.items()])],
         "sha256_mismatch: 6"),
        ([*base, "-f", "axolotl", "-o", str(out), *roots],
         "--format must be one of swift, llamafactory, sharegpt"),
        ([*base, "-f", "swift", "-o", str(out), "--clips", "whole", *roots],
         "--clips must be one of cut, frames"),
        ([*base, "-f", "swift", "-o", str(out), *roots[:2]], "no video root for source"),
        (["-d", REPO, "-r", "iter9", "--store", str(published.store), "-f", "swift", "-o", str(out),
          *roots], "iter9"),
    ]
    for args, message in cases:
        res = _cli(*args)
        assert res.exit_code == 2, (args, res.output)
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
        assert not out.exists() and not list(tmp_path.glob(".out.export-*"))
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = _cli(*base, "-f", "swift", "-o", str(out), *roots)
    assert res.exit_code == 2 and "not empty" in res.output and (out / "keep.txt").read_text() == "mine"
    res = _cli(*base, "-f", "swift", "-o", str(out), "--overwrite", *roots)  # --overwrite replaces only an export
    assert res.exit_code == 2 and "--overwrite replaces only what savi export wrote" in res.output, res.output
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    assert _cli(*base, "-f", "swift", "-o", str(out), *roots).exit_code == 0
    res = _cli(*base, "-f", "swift", "-o", str(out), "--overwrite", *roots)
    assert res.exit_code == 0, res.output
    assert len(_jsonl(out / "train.jsonl")) == len(published.pairs)
    assert f"-> {out / 'train.jsonl'}: 6 of 6 pairs, 1 clips cut" in res.output


def _normalised(text: str, pub: Published, out: Path) -> str:
    """Machine-independent: the export folder and the video folder become placeholders."""
    return text.replace(str(out), "$OUT").replace(str(pub.base / "videos"), "$VIDEOS")


def test_llamafactory_export_matches_the_golden_files(published: Published, tmp_path: Path) -> None:
    out = tmp_path / "lf"
    result = _export(published, out, "llamafactory")
    assert result.dataset_name == "videosavi-export_iter1"
    info = json.loads((out / "dataset_info.json").read_text())
    entry = info["videosavi-export_iter1"]
    assert entry["formatting"] == "sharegpt" and entry["ranking"] is True and entry["file_name"] == "train.jsonl"
    assert entry["columns"] == {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                                "videos": "videos"}
    for row in _jsonl(out / "train.jsonl"):
        check_llamafactory_row(row)
    files = {"train.jsonl": _normalised((out / "train.jsonl").read_text(), published, out),
             "dataset_info.json": (out / "dataset_info.json").read_text()}
    if os.environ.get("VIDEOSAVI_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
    for name, text in files.items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), f"{name} differs from {GOLDEN / name}"
    # the sharegpt format is the same rows without LLaMA-Factory's dataset_info.json
    plain = tmp_path / "sharegpt"
    _export(published, plain, "sharegpt")
    assert _normalised((plain / "train.jsonl").read_text(), published, plain) == files["train.jsonl"]
    assert not (plain / "dataset_info.json").exists()


def test_ms_swift_loader_reads_the_export(published: Published, tmp_path: Path) -> None:
    """Skipped where ms-swift is not importable. `pip install --dry-run ms-swift -c constraints-cpu.txt`
    resolves only to ms-swift 1.3.0 (2023, before its multimodal DPO format); the 3.x/4.x releases pin
    datasets < 4.8.5 (ours 5.2) and trl < 1.0 (ours 1.16), so they cannot sit beside our pins. The
    documented format is checked by `check_swift_row` in the tests above; in a venv of its own, ms-swift
    4.6.0's loader read all 48 rows of the demo's export unchanged (closing note of issue 12)."""
    reason = "ms-swift >= 3 cannot be installed beside our pins (datasets<4.8.5, trl<1.0)"
    pytest.importorskip("swift", reason=reason)
    try:  # the loader `swift rlhf` uses: swift.dataset in 4.x, swift.llm in 3.x
        from swift.dataset import load_dataset as swift_load_dataset
    except ImportError:
        swift_load_dataset = pytest.importorskip("swift.llm", reason=reason).load_dataset
    out = tmp_path / "swift"
    _export(published, out)
    train, _ = swift_load_dataset([str(out / "train.jsonl")], split_dataset_ratio=0)
    assert len(train) == len(published.pairs)
    for row in train:
        assert row["rejected_response"] and row["videos"] and os.path.isfile(row["videos"][0])


def test_config_and_data_root_name_the_roots(published: Published, tmp_path: Path) -> None:
    config = tmp_path / "roots.yaml"
    config.write_text("name: roots\nsources:\n" + "".join(
        f"  {s}: {{kind: folder, root: videos/{s}, quota: 1}}\n" for s in SOURCES), encoding="utf-8")
    result = _export(published, tmp_path / "out", video_roots=[], config=config, data_root=published.base)
    assert result.rows == len(published.pairs)
    with pytest.raises(TrainingDataError, match="no video root for source"):
        _export(published, tmp_path / "out2", video_roots=["star=" + str(published.roots["star"])])


def test_safe_names_keep_odd_ids_apart() -> None:
    assert safe_name("6H78U") == "6H78U"
    assert safe_name("a/b") != safe_name("a_b") and "/" not in safe_name("a/b")
    assert clip_rel("star", "6H78U", 0.5, 1.5) == "clips/star/6H78U_0.5-1.5.mp4"
    assert clip_rel("star", "6H78U", None, 3.0) == "clips/star/6H78U_0-3.mp4"

"""The demo sources: real manifest formats, laid out for configs/demo.yaml, deterministic, decodable;
and the `savi demo-data` / `savi sample` commands on them."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from videosavi.builders.decode.frames import decode_frames
from videosavi.builders.sources.demo_data import write_demo_data
from videosavi.builders.sources.sampler import sample_videos
from videosavi.cli import app
from videosavi.config import load_config
from videosavi.run_dir import RunDir


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_data(root, videos_per_source=6, seed=0)
    return root


def digest_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_matches_the_demo_config_and_lists_missing_files(demo: Path) -> None:
    cfg = load_config("demo")
    star = json.loads((demo / "star" / "STAR_train.json").read_text())
    assert {"question_id", "video_id", "start", "end"} <= set(star[0])
    clips = {(r["video_id"], r["start"], r["end"]) for r in star}
    assert len(clips) < len(star)  # several questions per clip
    per_video: dict[str, int] = {}
    for vid, _, _ in clips:
        per_video[vid] = per_video.get(vid, 0) + 1
    assert max(per_video.values()) >= 2  # one video cut into two clips
    vidal = json.loads((demo / "vidal" / "VIDAL_annotations.json").read_text())
    assert all({"folder", "mplug", "polish_mplug", "ofa", "raw"} <= set(v) for v in vidal.values())
    with open(demo / "webvid" / "results_2M_train_1.csv", newline="") as fh:
        webvid = list(csv.DictReader(fh))
    assert set(webvid[0]) == {"videoid", "contentUrl", "duration", "page_dir", "name"}
    root = {name: demo / s.root for name, s in cfg.sources.items()}
    listed = {
        "star": [root["star"] / f"{vid}.mp4" for vid in per_video],
        "vidal": [root["vidal"] / v["folder"] / f"{k}.mp4" for k, v in vidal.items()],
        "webvid": [root["webvid"] / r["page_dir"] / f"{r['videoid']}.mp4" for r in webvid],
    }
    for name, paths in listed.items():
        present = [p for p in paths if p.exists()]
        assert len(present) == 6 and len(paths) == 7, name  # one listed video has no file
        assert len(present) >= cfg.sources[name].quota


def test_the_demo_config_samples_its_quotas_without_shortfall(demo: Path) -> None:
    cfg = load_config("demo")
    res = sample_videos(cfg, demo)
    assert res.shortfalls == {}
    assert [(s.source, s.sampled) for s in res.sources] == [(n, s.quota) for n, s in cfg.sources.items()]
    assert all(v.sha256 for v in res.available)


def test_demo_videos_decode_and_one_is_a_rotated_phone_clip(demo: Path) -> None:
    videos = sorted(demo.rglob("*.mp4"))
    assert len(videos) == 18
    shapes = []
    for p in videos:
        out = decode_frames(p, 8)
        assert out.frames.shape[0] == 8 and 2.0 <= out.duration <= 4.0 and out.fps in (24.0, 25.0, 30.0)
        shapes.append(out.frames.shape[1:3])
    assert any(h > w for h, w in shapes)  # portrait: decord applied the rotation metadata
    assert len({s for s in shapes if s[0] < s[1]}) == 2  # both landscape sizes appear


def test_same_seed_same_bytes_other_seed_other_data(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_demo_data(again, videos_per_source=6, seed=0)
    assert digest_tree(again) == digest_tree(demo)
    other = tmp_path / "other"
    write_demo_data(other, videos_per_source=2, seed=1)
    assert set(digest_tree(other)) != set(digest_tree(demo))


def test_cli_demo_data_then_sample_with_decode(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "data"
    res = runner.invoke(app, ["demo-data", "--out", str(data), "--videos-per-source", "4"])
    assert res.exit_code == 0, res.output
    assert "4 video files" in res.output
    out = tmp_path / "run"
    args = ["sample", "--config", "demo", "--data-root", str(data), "--out", str(out), "--decode", "--no-progress"]
    res = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert res.exit_code == 0, res.output
    videos = RunDir(out).read_videos()
    assert sum(v.available for v in videos) == 8
    for source, quota in (("star", 4), ("vidal", 2), ("webvid", 2)):
        line = next(ln for ln in res.output.splitlines() if ln.strip().startswith(source))
        assert line.split()[1] == str(quota)
    assert "decoded 8/8 videos" in res.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output

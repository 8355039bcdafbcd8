"""Seeded, stratified sampling: same manifests + seed -> same sample in any process; quotas, shortfalls
and unavailable files. The sampler never decodes, so the "videos" here are small byte files."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from videosavi.builders.sources.sampler import rank_key, sample_videos
from videosavi.config import BuildConfig
from videosavi.run_dir import RunDir

N_STAR, N_VIDAL, N_WEBVID = 40, 30, 30


def build_root(root: Path, shuffle_seed: int | None = None) -> None:
    """STAR (20 videos x 2 clips), VIDAL and WebVid manifests; some files missing, some empty."""
    rng = random.Random(shuffle_seed)
    star = [{"question_id": f"q{i}", "video_id": f"S{i // 2:04d}", "start": float(i % 2), "end": 5.0 + i % 2,
             "situations": {"1": {"bbox": [[1, 2]]}}} for i in range(N_STAR)]
    vidal = {f"yt{i:09d}": {"folder": f"f{i % 4}", "polish_mplug": f"caption {i}"} for i in range(N_VIDAL)}
    webvid = [{"videoid": str(1000 + i), "contentUrl": "u", "duration": "PT1S", "page_dir": f"p{i % 3}",
               "name": f"clip {i}"} for i in range(N_WEBVID)]
    if shuffle_seed is not None:
        rng.shuffle(star)
        rng.shuffle(webvid)
        keys = list(vidal)
        rng.shuffle(keys)
        vidal = {k: vidal[k] for k in keys}
    for sub in ("star", "vidal", "webvid"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "star" / "STAR_train.json").write_text(json.dumps(star))
    (root / "vidal" / "VIDAL_annotations.json").write_text(json.dumps(vidal))
    with open(root / "webvid" / "results_2M_train_1.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(webvid[0]))
        w.writeheader()
        w.writerows(webvid)
    files = ([f"star/videos/S{i:04d}.mp4" for i in range(N_STAR // 2)]
             + [f"vidal/videos/f{i % 4}/yt{i:09d}.mp4" for i in range(N_VIDAL)]
             + [f"webvid/videos/p{i % 3}/{1000 + i}.mp4" for i in range(N_WEBVID)])
    for k, rel in enumerate(files):
        if k % 5 == 1:
            continue  # listed, no file
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"" if k % 7 == 3 else f"video bytes {rel}".encode())


def config(seed: int = 42, star: int = 8, vidal: int = 5, webvid: int = 5) -> BuildConfig:
    return BuildConfig.model_validate({"seed": seed, "sources": {
        "star": {"kind": "star", "root": "star/videos", "manifest": "star/STAR_train.json", "quota": star},
        "vidal": {"kind": "vidal", "root": "vidal/videos", "manifest": "vidal/VIDAL_annotations.json",
                  "quota": vidal},
        "webvid": {"kind": "webvid", "root": "webvid/videos", "manifest": "webvid/results_*.csv", "quota": webvid},
    }})


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("data")
    build_root(r)
    return r


def uids(videos: list) -> list[tuple[str, bool]]:
    return [(v.video_uid, v.available) for v in videos]


def test_quotas_are_met_with_available_videos_in_config_order(root: Path) -> None:
    res = sample_videos(config(), root)
    assert [s.source for s in res.sources] == ["star", "vidal", "webvid"]
    assert [(s.source, s.sampled) for s in res.sources] == [("star", 8), ("vidal", 5), ("webvid", 5)]
    assert res.shortfalls == {}
    sources = [v.source for v in res.videos]
    assert sources == sorted(sources, key=["star", "vidal", "webvid"].index)  # grouped, config order
    for v in res.available:
        data = (root / f"{v.source}/videos" / v.video_path).read_bytes()
        assert data and v.sha256 == hashlib.sha256(data).hexdigest()
    star = [v for v in res.available if v.source == "star"]
    assert all(v.clip_start is not None and "#t=" in v.video_uid for v in star)  # STAR clips are samples
    assert all(v.caption for v in res.available if v.source != "star")


def test_sampling_order_is_the_rank_order_and_unavailable_videos_are_kept_with_a_reason(root: Path) -> None:
    res = sample_videos(config(), root)
    for s in ("star", "vidal", "webvid"):
        vids = [v for v in res.videos if v.source == s]
        keys = [rank_key(42, s, v.video_uid) for v in vids]
        assert keys == sorted(keys), s
        assert vids[-1].available  # the walk stops at the video that fills the quota
    bad = [v for v in res.videos if not v.available]
    assert bad, "the fixture has missing and empty files among the first drawn"
    assert {v.unavailable_reason for v in bad} <= {"missing_file", "empty_file"}
    assert all(v.sha256 is None for v in bad)
    for v in bad:
        path = root / f"{v.source}/videos" / v.video_path
        assert (not path.exists()) if v.unavailable_reason == "missing_file" else path.stat().st_size == 0
    counts = {s.source: s.unavailable for s in res.sources}
    assert sum(counts.values()) == len(bad)


def test_shortfall_is_reported_and_logged_not_raised(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="videosavi.builders.sources.sampler"):
        res = sample_videos(config(vidal=1000), root)
    vidal = next(s for s in res.sources if s.source == "vidal")
    available_files = sum(1 for p in (root / "vidal" / "videos").rglob("*.mp4") if p.stat().st_size)
    assert vidal.sampled == available_files and vidal.shortfall == 1000 - available_files
    assert res.shortfalls == {"vidal": 1000 - available_files}
    assert vidal.candidates == N_VIDAL and vidal.sampled + vidal.unavailable == N_VIDAL
    assert any("vidal" in r.message and "shortfall" in r.message for r in caplog.records)


def test_holdout_removes_reserved_videos_and_leaves_other_configs_unchanged(root: Path) -> None:
    from videosavi.builders.sources.holdout import is_held_out
    from videosavi.builders.sources.sampler import sample_key
    from videosavi.builders.version import SAMPLER_VERSION
    from videosavi.config import EvalConfig
    from videosavi.hashing import stable_hash

    plain_cfg = config()
    held_cfg = plain_cfg.model_copy(update={"eval": EvalConfig(holdout=0.3)})
    plain, held = sample_videos(plain_cfg, root), sample_videos(held_cfg, root)
    assert not any(is_held_out(held_cfg.eval, v.source, v.video_uid) for v in held.videos)
    assert any(is_held_out(held_cfg.eval, v.source, v.video_uid) for v in plain.videos)  # the rule bites here
    assert all(s.held_out > 0 for s in held.sources) and all(s.held_out == 0 for s in plain.sources)
    for source in ("star", "vidal", "webvid"):
        # the same rank order, minus the reserved videos: the plain walk's survivors come first
        kept = [v.video_uid for v in plain.videos if v.source == source
                and not is_held_out(held_cfg.eval, source, v.video_uid)]
        assert [v.video_uid for v in held.videos if v.source == source][:len(kept)] == kept
    # a config without `eval` keeps the sample key and data hash it had before holdouts existed
    # (nor the `follow_symlinks` option, added later and left out of the key while it is off)
    sources = {name: {k: v for k, v in src.model_dump(mode="json").items() if k != "follow_symlinks"}
               for name, src in plain_cfg.sources.items()}
    assert sample_key(plain_cfg) == stable_hash({"sources": sources, "seed": 42, "sampler": SAMPLER_VERSION})
    assert "eval" not in plain_cfg.data_dump()
    assert sample_key(held_cfg) != sample_key(plain_cfg) and held_cfg.data_hash() != plain_cfg.data_hash()


def test_a_zero_quota_samples_nothing_and_touches_no_file(root: Path) -> None:
    res = sample_videos(config(star=0), root)
    assert not [v for v in res.videos if v.source == "star"]
    assert next(s for s in res.sources if s.source == "star").shortfall == 0


def test_manifest_row_order_does_not_change_the_sample(root: Path, tmp_path: Path) -> None:
    build_root(tmp_path, shuffle_seed=99)
    a = sample_videos(config(), root)
    b = sample_videos(config(), tmp_path)
    assert uids(a.videos) == uids(b.videos)
    assert [v.sha256 for v in a.videos] == [v.sha256 for v in b.videos]


def test_another_seed_draws_another_sample(root: Path) -> None:
    a = sample_videos(config(seed=1), root)
    b = sample_videos(config(seed=2), root)
    assert uids(a.videos) != uids(b.videos)


def test_hashing_can_be_skipped(root: Path) -> None:
    res = sample_videos(config(), root, hash_files=False)
    assert res.available and all(v.sha256 is None for v in res.videos)


_CHILD = """
import json, sys
from pathlib import Path
from tests.builders.sources.test_sampler import config
from videosavi.run_dir import RunDir
from videosavi.builders.sources.sampler import sample_videos
res = sample_videos(config(), Path(sys.argv[1]))
RunDir(Path(sys.argv[2])).write_videos(res.videos)
print(json.dumps([v.video_uid for v in res.videos]))
"""


def test_the_same_sample_in_two_separate_processes(root: Path, tmp_path: Path) -> None:
    outs = []
    for hashseed in ("1", "2"):  # Python's str hash differs between these processes
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        run = tmp_path / f"run{hashseed}"
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(run)], capture_output=True, text=True,
                              env=env, cwd=Path(__file__).resolve().parents[3], timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append((json.loads(proc.stdout.strip().splitlines()[-1]), RunDir(run).read_videos()))
    (uids_a, videos_a), (uids_b, videos_b) = outs
    assert uids_a == uids_b and len(uids_a) > 18
    assert videos_a == videos_b  # videos.parquet rows equal field by field
    here = sample_videos(config(), root)
    assert [v.video_uid for v in here.videos] == uids_a


def test_videos_parquet_round_trips_the_sample(root: Path, tmp_path: Path) -> None:
    res = sample_videos(config(), root)
    run = RunDir(tmp_path / "run")
    run.write_videos(res.videos)
    assert run.read_videos() == res.videos


def test_an_empty_manifest_is_a_shortfall_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "star").mkdir()
    (tmp_path / "star" / "STAR_train.json").write_text("[]")
    cfg = BuildConfig.model_validate({"seed": 1, "sources": {
        "star": {"kind": "star", "root": "star/videos", "manifest": "star/STAR_train.json", "quota": 2}}})
    res = sample_videos(cfg, tmp_path)
    assert res.videos == [] and res.shortfalls == {"star": 2}

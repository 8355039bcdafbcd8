"""Shared fixtures. Tests make their own videos and tiny models; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from videosavi import progress

# Never reach the network from tests, and keep caches inside the test session.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No progress bars in test output (videosavi.progress); a test that wants them calls enable_progress_bars().
os.environ.setdefault("VIDEOSAVI_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def videosavi_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One cache dir per test session (tiny models are built once and reused)."""
    path = os.environ.get("VIDEOSAVI_TEST_CACHE") or str(tmp_path_factory.mktemp("videosavi-cache"))
    os.environ["VIDEOSAVI_CACHE"] = path
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(videosavi_cache: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOSAVI_CACHE", videosavi_cache)
    # a command's --no-progress (or a test's enable_progress_bars()) switches this process: reset it after
    monkeypatch.setattr(progress, "_override", None)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo videos in the three real manifest formats, 3 per source; tests must not change them."""
    from videosavi.builders.sources.demo_data import write_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    write_demo_data(root, videos_per_source=3)
    return root


@pytest.fixture(scope="session")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.build_helpers import write_small_config

    return write_small_config(tmp_path_factory.mktemp("small-config") / "small.yaml")


@pytest.fixture(scope="session")
def small_reference(small_config: Path, demo_root: Path, tmp_path_factory: pytest.TempPathFactory,
                    videosavi_cache: str) -> Path:
    """An undisturbed build of the first SMALL_LIMIT demo videos: what resumed, sharded and Ray builds
    of the same command must equal row for row."""
    from tests.helpers.build_helpers import small_options
    from videosavi.builders.run.runner import run_build

    out = tmp_path_factory.mktemp("small-reference") / "clean"
    run_build(small_options(small_config, demo_root, out))
    return out


# -- lossy demo data: the reserve at work (test_quotas.py, test_ray.py) ------------------------------


def _truncate(path: Path, keep: float = 0.3) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture(scope="session")
def lossy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data (6 videos per source) whose first-drawn STAR and VIDAL videos cannot be decoded."""
    from videosavi.builders.sources.demo_data import write_demo_data
    from videosavi.builders.sources.sampler import sample_videos
    from videosavi.config import load_config

    root = tmp_path_factory.mktemp("lossy-data")
    write_demo_data(root, videos_per_source=6)
    cfg = load_config("demo")
    drawn = [v for v in sample_videos(cfg, root, hash_files=False).videos if v.available]
    for source in ("star", "vidal"):
        first = next(v for v in drawn if v.source == source)
        _truncate(root / cfg.sources[source].root / first.video_path)
    return root


SMALL_QUOTAS = {"sources": {"star": {"quota": 2}, "vidal": {"quota": 1}, "webvid": {"quota": 1}},
                "stages": {"max_attempts": 1, "critique": {"max_new_tokens": 130}}}


@pytest.fixture(scope="session")
def lossy_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 + 1 questions per video, and critiques cut short often enough to be quarantined."""
    from tests.helpers.build_helpers import write_small_config

    return write_small_config(tmp_path_factory.mktemp("lossy-config") / "lossy.yaml", SMALL_QUOTAS)


@pytest.fixture(scope="session")
def lossy_reference(lossy_config: Path, lossy_root: Path, tmp_path_factory: pytest.TempPathFactory,
                    videosavi_cache: str) -> Path:
    from videosavi.builders.run.runner import BuildOptions, run_build
    from videosavi.run_dir import RunDir

    out = tmp_path_factory.mktemp("lossy-ref") / "run"
    run_build(BuildOptions(config=lossy_config, data_root=lossy_root, out=out))
    info = RunDir(out).read_build_info()
    assert info.counts.pairs == 8, info.counts  # 2 x 2 + 1 x 2 + 1 x 2
    assert sum(f.reserve_videos_used for f in info.counts.sources.values()) >= 2
    assert sum(s.quarantined for s in info.counts.stages.values()) >= 1, "no quarantine was forced"
    return out

"""Shared fixtures. Tests make their own videos and tiny models; nothing is downloaded."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from videosavi import progress

# Never reach the network from tests, and keep caches inside the test session.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No progress bars in test output (videosavi.progress); a test that wants them calls enable_progress_bars().
os.environ.setdefault("VIDEOSAVI_NO_PROGRESS", "1")


def shared(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """`name`, made once per test session by whichever xdist worker asks first (`make(path)` under a file
    lock) and then read by every worker: the tiny models, the demo data and the reference builds cost
    seconds each and were made again by each worker. What a shared fixture gives is read-only to tests."""
    base = factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    path, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)  # what a worker that failed halfway left
            make(path)
            done.touch()
    return path


def shared_copy(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """This worker's own copy of the shared `name`: a run directory is locked while it is published or
    rebuilt, so workers that use one at the same time each need theirs (a copy costs milliseconds, a
    build seconds)."""
    copy = factory.mktemp(name)
    shutil.copytree(shared(factory, name, make), copy, dirs_exist_ok=True)
    return copy


@pytest.fixture(scope="session")
def videosavi_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One cache dir per worker (the default store lives there), whose tiny models are the session's:
    built once by the first worker that needs one (builders/generate/models/tiny.py renames a finished
    model into place, so workers never see half of one)."""
    path = os.environ.get("VIDEOSAVI_TEST_CACHE")
    if path is None:
        cache = tmp_path_factory.mktemp("videosavi-cache")
        (cache / "models").symlink_to(shared(tmp_path_factory, "models", lambda p: p.mkdir()), target_is_directory=True)
        path = str(cache)
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

    return shared(tmp_path_factory, "demo-data", lambda root: write_demo_data(root, videos_per_source=3))


@pytest.fixture(scope="session")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.build_helpers import write_small_config

    return shared(tmp_path_factory, "small-config", lambda p: write_small_config(p / "small.yaml")) / "small.yaml"


@pytest.fixture(scope="session")
def small_reference(small_config: Path, demo_root: Path, tmp_path_factory: pytest.TempPathFactory,
                    videosavi_cache: str) -> Path:
    """An undisturbed build of the first SMALL_LIMIT demo videos: what resumed, sharded and Ray builds
    of the same command must equal row for row."""
    from tests.helpers.build_helpers import small_options
    from videosavi.builders.run.runner import run_build

    return shared_copy(tmp_path_factory, "small-reference",
                  lambda base: run_build(small_options(small_config, demo_root, base / "clean"))) / "clean"


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

    def make(root: Path) -> None:
        write_demo_data(root, videos_per_source=6)
        cfg = load_config("demo")
        drawn = [v for v in sample_videos(cfg, root, hash_files=False).videos if v.available]
        for source in ("star", "vidal"):
            first = next(v for v in drawn if v.source == source)
            _truncate(root / cfg.sources[source].root / first.video_path)

    return shared(tmp_path_factory, "lossy-data", make)


SMALL_QUOTAS = {"sources": {"star": {"quota": 2}, "vidal": {"quota": 1}, "webvid": {"quota": 1}},
                "stages": {"max_attempts": 1, "critique": {"max_new_tokens": 130}}}


@pytest.fixture(scope="session")
def lossy_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 + 1 questions per video, and critiques cut short often enough to be quarantined."""
    from tests.helpers.build_helpers import write_small_config

    return shared(tmp_path_factory, "lossy-config",
                  lambda p: write_small_config(p / "lossy.yaml", SMALL_QUOTAS)) / "lossy.yaml"


@pytest.fixture(scope="session")
def lossy_reference(lossy_config: Path, lossy_root: Path, tmp_path_factory: pytest.TempPathFactory,
                    videosavi_cache: str) -> Path:
    from videosavi.builders.run.runner import BuildOptions, run_build
    from videosavi.run_dir import RunDir

    def make(base: Path) -> None:
        run_build(BuildOptions(config=lossy_config, data_root=lossy_root, out=base / "run"))

    out = shared_copy(tmp_path_factory, "lossy-reference", make) / "run"
    info = RunDir(out).read_build_info()
    assert info.counts.pairs == 8, info.counts  # 2 x 2 + 1 x 2 + 1 x 2
    assert sum(f.reserve_videos_used for f in info.counts.sources.values()) >= 2
    assert sum(s.quarantined for s in info.counts.stages.values()) >= 1, "no quarantine was forced"
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests first, longest first (`@pytest.mark.slow(seconds=N)`: about N s on 2 cores), the rest
    in file order: xdist hands out the first tests (their modules, with --dist loadscope) first, so the long
    end-to-end runs start at once and the short tests fill the workers around them, instead of one long test
    starting last while the others idle."""

    def order(item: pytest.Item) -> tuple[bool, float]:
        slow = item.get_closest_marker("slow")
        return slow is None, -float(slow.kwargs.get("seconds", 0)) if slow else 0.0

    items.sort(key=order)

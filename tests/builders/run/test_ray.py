"""The Ray executor on a real local Ray cluster (2 CPUs): same rows as a local build, and a lost
worker's shard retried from its cache (issue 7, item 1).

The cluster's head runs in its own process (as `ray start --head` would), so the builds under test
connect to it by address exactly as `savi-build --executor ray --ray-address ADDR` does on a real
cluster, and the shard tasks run in Ray worker processes, not in pytest. Workers are killed with the
`part_written` failpoint (SIGKILL), limited to one strike by a marker file so the retry survives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import SMALL_LIMIT, cached_calls, rows, small_options, subprocess_env
from videosavi.errors import ExecutorError
from videosavi.run_dir import RunDir

ray = pytest.importorskip("ray")
# one Ray cluster: `make test` hands a module to one xdist worker (--dist loadscope)
pytestmark = [pytest.mark.ray, pytest.mark.slow(seconds=30)]

RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",  # a throw-away cluster on 127.0.0.1; no token file in the home dir
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
}
HEAD = """
import sys, ray
ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20,
               _node_ip_address="127.0.0.1")
print(ctx.address_info["gcs_address"], flush=True)
sys.stdin.read()  # until the test session closes our stdin (or dies)
ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_env(videosavi_cache: str) -> Iterator[dict[str, str]]:
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    yield RAY_ENV
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def ray_head(ray_env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """Start the head first: its ~10 s start-up overlaps the local reference build."""
    proc = subprocess.Popen([sys.executable, "-c", HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=subprocess_env(**ray_env))
    yield proc
    proc.stdin.close()  # the head shuts its cluster down and exits
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def address(ray_head: subprocess.Popen, small_reference: Path) -> str:
    # asking for the reference first lets its build overlap the head's start-up
    line = ray_head.stdout.readline().strip()
    assert line, "the Ray head process did not start"
    return line


def assert_same_as_local(out: Path, reference: Path) -> None:
    got, ref = RunDir(out), RunDir(reference)
    assert rows(out) == rows(reference)
    info, ref_info = got.read_build_info(), ref.read_build_info()
    assert info.shards == ref_info.shards and len(info.shards) > 1
    assert sorted(p.name for p in got.data_dir.iterdir()) == sorted(p.name for p in ref.data_dir.iterdir())
    assert (info.num_shards, info.shard_index) == (None, None)
    for field in ("videos_sampled", "videos_done", "videos_skipped", "questions", "pairs", "pairs_by_source",
                  "skip_reasons", "no_pair_reasons", "filtered"):
        assert getattr(info.counts, field) == getattr(ref_info.counts, field), field
    assert got.read_skipped() == ref.read_skipped()
    assert got.read_quarantine() == ref.read_quarantine()
    assert got.read_videos() == ref.read_videos() and got.read_sample_key() == ref.read_sample_key()
    assert got.read_prompts() == ref.read_prompts()


def total(run: Path, field: str) -> int:
    return sum(getattr(s, field) for s in RunDir(run).read_build_info().counts.stages.values())


def test_ray_build_equals_local_build(address: str, small_reference: Path, small_config: Path, demo_root: Path,
                                      tmp_path: Path) -> None:
    from videosavi.cli import app

    out = tmp_path / "ray"
    res = CliRunner().invoke(app, ["build", "--executor", "ray", "--ray-address", address,
                                   "--config", str(small_config), "--data-root", str(demo_root), "--out", str(out),
                                   "--limit-videos", str(SMALL_LIMIT), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert_same_as_local(out, small_reference)
    plan = json.loads((out / "shards" / "plan.json").read_text())
    assert plan == {"num_shards": 2}  # one shard per CPU of the cluster
    seqs = [sorted(int(p.stem.split("-")[1]) for p in (out / "shards" / f"shard-{i}" / "parts").glob("*.parquet"))
            for i in range(2)]
    assert seqs == [[0, 2], [1, 3]]  # each video built once, by the shard that owns it
    # a fresh build made every call once: the shards together made exactly the local build's calls
    assert total(out, "calls") == total(small_reference, "calls") and total(out, "cached") == 0


def test_killed_worker_is_retried_and_resumes_from_its_cache(address: str, small_reference: Path,
                                                             small_config: Path, demo_root: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from videosavi.builders.run.executors.ray_executor import run_build_ray

    marker = tmp_path / "killed.pid"
    monkeypatch.setenv("VIDEOSAVI_FAULT", "part_written:1:kill")
    monkeypatch.setenv("VIDEOSAVI_FAULT_ONCE", str(marker))
    out = tmp_path / "ray"
    result = run_build_ray(small_options(small_config, demo_root, out), address=address)
    assert marker.exists(), "no worker was killed: the failpoint never fired"
    assert_same_as_local(out, small_reference)
    assert result.pending_videos == 0
    # The retry answered the killed attempt's calls from the shard's cache instead of repeating them, and
    # build.json counts the calls of both attempts: every call of the local build, each made once.
    assert total(out, "cached") > 0
    assert total(out, "calls") == total(small_reference, "calls")


def test_lost_worker_without_retries_is_a_clear_error_and_a_rerun_resumes(
        address: str, small_reference: Path, small_config: Path, demo_root: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from videosavi.builders.run.executors.ray_executor import run_build_ray

    marker = tmp_path / "killed.pid"
    monkeypatch.setenv("VIDEOSAVI_FAULT", "model_batch:2:kill")
    monkeypatch.setenv("VIDEOSAVI_FAULT_ONCE", str(marker))
    out = tmp_path / "ray"
    with pytest.raises(ExecutorError) as info:
        run_build_ray(small_options(small_config, demo_root, out), address=address, max_retries=0)
    message = str(info.value)
    assert marker.exists()
    assert "1 of 2 shard(s) did not finish" in message and "run the same command again" in message
    assert "Traceback" not in message and "\n" not in message
    assert not (out / "build.json").exists()  # nothing half-merged
    shard_dirs = [out / "shards" / f"shard-{i}" for i in range(2)]
    before = {k: t for d in shard_dirs for k, t in cached_calls(d).items()}
    monkeypatch.delenv("VIDEOSAVI_FAULT")
    run_build_ray(small_options(small_config, demo_root, out), address=address, max_retries=0)
    assert_same_as_local(out, small_reference)
    after = {k: t for d in shard_dirs for k, t in cached_calls(d).items()}
    # No committed call was made again (a repeat would have rewritten its row's time), and build.json,
    # which counts the calls of both runs, counts exactly the local build's calls, each once.
    assert {k: after[k] for k in before} == before
    assert 0 < len(before) < total(small_reference, "calls")
    assert total(out, "calls") == total(small_reference, "calls") == len(after)


def test_shard_plan_is_kept_on_resume_and_a_different_count_is_refused() -> None:
    from videosavi.builders.run.executors.ray_executor import plan_shards
    from videosavi.errors import RunDirMismatchError

    cpus = {"CPU": 8.0}
    gpus = {"CPU": 64.0, "GPU": 4.0}
    assert plan_shards(None, None, cpus, videos=100, uses_gpu=False) == 8
    assert plan_shards(None, None, gpus, videos=100, uses_gpu=True) == 4
    assert plan_shards(None, None, cpus, videos=3, uses_gpu=False) == 3  # never more shards than videos
    assert plan_shards(None, 5, cpus, videos=100, uses_gpu=False) == 5  # a resume keeps the first split
    assert plan_shards(5, 5, cpus, videos=100, uses_gpu=False) == 5
    with pytest.raises(RunDirMismatchError, match="split into 5 shards"):
        plan_shards(6, 5, cpus, videos=100, uses_gpu=False)


def test_ray_build_tops_up_from_the_reserve_like_a_local_build(address: str, lossy_reference: Path,
                                                               lossy_config: Path, lossy_root: Path,
                                                               tmp_path: Path) -> None:
    from videosavi.builders.run.executors.ray_executor import run_build_ray
    from videosavi.builders.run.runner import BuildOptions

    out = tmp_path / "ray"
    result = run_build_ray(BuildOptions(config=lossy_config, data_root=lossy_root, out=out),
                           address=address)
    assert rows(out) == rows(lossy_reference)
    assert result.info.counts.sources == RunDir(lossy_reference).read_build_info().counts.sources
    assert RunDir(out).read_videos() == RunDir(lossy_reference).read_videos()  # the same reserve videos drawn

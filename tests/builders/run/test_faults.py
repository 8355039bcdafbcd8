"""Faults during a build (issue 7, item 2): each ends in a clear error or a recorded skip, and a
re-run of the same command ends with exactly the rows of an undisturbed build, none lost or doubled.

- SIGKILL at three points (after a batch of model results is committed, between a video's part file
  and its done mark, while the shards are finalised): the build runs as `python -m videosavi build`
  in a child process that the failpoint kills with SIGKILL, the way a machine loses power.
- A full disk while writing a part: the failpoint raises ENOSPC inside the write (mounting a tiny
  file system needs privileges CI does not have).
- Bad videos: zero-byte, truncated, random bytes, text, audio-only, corrupt, and a video deleted
  between sampling and decoding.
- An OpenAI-compatible server that answers HTTP 500, times out, or sends a body that is not JSON:
  the server is tests/helpers/fake_openai.py (a real server cannot be told to fail; see that module).

Interruption during publish is covered in test_publish.py (kill and ENOSPC between commit and tag).
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import (
    SMALL_LIMIT,
    cached_calls,
    rows,
    rows_by_pair_id,
    savi_command,
    small_options,
    subprocess_env,
    write_small_config,
)
from tests.helpers.fake_openai import FakeServer, completion, model_reply, request_schema, video_digest
from tests.helpers.videos import BAD_FILES, make_bad_files, make_video
from videosavi import _faults
from videosavi.builders.run.disk_full import disk_full_error
from videosavi.builders.run.runner import load_or_sample, run_build
from videosavi.config import load_config
from videosavi.errors import DiskFullError, ShortfallError
from videosavi.run_dir import RunDir


@pytest.fixture(autouse=True)
def _fresh_failpoints() -> Iterator[None]:
    """Forget the failpoints' hit counts, so an in-process test can aim at the n-th hit of a fresh run."""
    _faults._hits.clear()
    yield
    _faults._hits.clear()


def calls_made(run: Path) -> int:
    """Model calls made for `run` by every process that worked on it (build.json sums them all)."""
    return sum(s.calls for s in RunDir(run).read_build_info().counts.stages.values())


def failed_calls(run: Path) -> int:
    """Calls that failed at the transport level (each is a call, logged, and retried later)."""
    with sqlite3.connect(Path(run) / "cache.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM call_errors").fetchone()[0]


def assert_resumed_like_reference(out: Path, reference: Path, before: dict[str, float]) -> None:
    """Same rows as the clean build, and every call committed before the fault was reused, not redone."""
    assert rows_by_pair_id(out) == rows_by_pair_id(reference)
    assert rows(out) == rows(reference)  # the same order and shard layout too
    assert RunDir(out).read_build_info().shards == RunDir(reference).read_build_info().shards
    after = cached_calls(out)
    assert {k: after[k] for k in before} == before  # a repeated call would have rewritten its row's time
    assert set(after) == set(cached_calls(reference))
    # every call was made once over all the processes, and counted once (a failed attempt is a call too)
    assert calls_made(out) == calls_made(reference) + failed_calls(out)


# -- SIGKILL at three points -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("point", ["model_batch:3", "part_written:2", "shard_written:1"])
def test_sigkill_then_resume_equals_an_undisturbed_build(point: str, small_config: Path, demo_root: Path,
                                                         small_reference: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = savi_command("build", "--config", str(small_config), "--data-root", str(demo_root), "--out", str(out),
                       "--limit-videos", str(SMALL_LIMIT), "--no-progress")
    proc = subprocess.run(cmd, env=subprocess_env(VIDEOSAVI_FAULT=f"{point}:kill"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (out / "build.json").exists()
    before = cached_calls(out)
    assert before, "the killed build committed nothing: the fault struck too early to test a resume"
    if point.startswith("shard_written"):
        assert len(before) == len(cached_calls(small_reference))  # every call was done; only finalising was cut
    run_build(small_options(small_config, demo_root, out))
    assert_resumed_like_reference(out, small_reference, before)


# -- a full disk -------------------------------------------------------------------------------------


def test_full_disk_is_one_clear_error_and_the_same_command_resumes(small_config: Path, demo_root: Path,
                                                                   small_reference: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from videosavi.cli import app

    out = tmp_path / "run"
    args = ["build", "--config", str(small_config), "--data-root", str(demo_root), "--out", str(out),
            "--limit-videos", str(SMALL_LIMIT), "--no-progress"]
    monkeypatch.setenv("VIDEOSAVI_FAULT", "part_write:2:enospc")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    [message] = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert message.startswith("error: the disk holding") and str(out) in message
    assert "No space left on device" in message and "run the same command again to resume" in message
    assert "Traceback" not in res.output
    assert not list((out / "parts").glob("*.tmp*")), "a half-written part file was left behind"
    assert len(list((out / "parts").glob("*.parquet"))) == 1  # the first video's part survived
    before = cached_calls(out)
    monkeypatch.delenv("VIDEOSAVI_FAULT")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert_resumed_like_reference(out, small_reference, before)


def test_sqlite_and_os_disk_full_errors_are_recognised(tmp_path: Path) -> None:
    import errno

    full = disk_full_error(sqlite3.OperationalError("database or disk is full"), tmp_path / "run")
    assert isinstance(full, DiskFullError) and "free some space" in str(full)
    quota = disk_full_error(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path)
    assert quota is not None and "Disk quota exceeded" in str(quota)
    assert disk_full_error(OSError(errno.EACCES, "Permission denied"), tmp_path) is None
    assert disk_full_error(sqlite3.OperationalError("no such table: calls"), tmp_path) is None


# -- bad videos --------------------------------------------------------------------------------------

GOOD = ("a_good.mp4", "b_good.mp4", "c_good.mp4")
DELETED = "b_good.mp4"


def replace_sources(path: Path, quota: int) -> Path:
    """The small config with the demo's three sources replaced by one plain folder `clips/`."""
    import yaml

    write_small_config(path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["sources"] = {"clips": {"kind": "folder", "root": "clips", "quota": quota}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def test_bad_videos_and_a_deleted_one_are_recorded_skips_and_lose_no_pair(tmp_path: Path) -> None:
    root = tmp_path / "data"
    clips = root / "clips"
    bad = make_bad_files(clips)
    for i, name in enumerate(GOOD):
        make_video(clips / name, num_frames=45, width=96, height=64, seed=i)
    n = len(GOOD) + len(bad)
    config = replace_sources(tmp_path / "folder.yaml", quota=n)
    out = tmp_path / "run"
    sampled = {v.video_path: v for v in load_or_sample(RunDir(out), load_config(config), root)}
    assert len(sampled) == n
    # A zero-byte file is caught by sampling already: kept in videos.parquet as unavailable, with why.
    assert not sampled["empty.mp4"].available and sampled["empty.mp4"].unavailable_reason
    assert sum(v.available for v in sampled.values()) == n - 1
    (clips / DELETED).unlink()  # gone before its frames are decoded

    # most of the source is unreadable, so its quota cannot be met: a shortfall this test accepts
    with pytest.raises(ShortfallError, match="clips: 4 of"):
        run_build(small_options(config, root, out, limit=None))
    result = run_build(replace(small_options(config, root, out, limit=None), allow_shortfall=True))
    skips = {s.video_path: s for s in RunDir(out).read_skipped()}
    expected = {name: reason for name, (_path, reason) in bad.items() if name != "empty.mp4"}
    expected[DELETED] = "missing_file"
    assert {p: s.reason for p, s in skips.items()} == expected
    assert all(s.message and s.source == "clips" for s in skips.values())
    c = result.info.counts
    assert (c.videos_sampled, c.videos_done, c.videos_skipped, result.pending_videos) == (n - 1, 2, len(expected), 0)
    assert c.skip_reasons == {r: list(expected.values()).count(r) for r in set(expected.values())}
    got = rows_by_pair_id(out)
    assert {r["video_path"] for r in got.values()} == {"a_good.mp4", "c_good.mp4"}

    # No pair lost: the two readable videos give exactly the pairs they give on their own.
    alone_root = tmp_path / "alone"
    for name in ("a_good.mp4", "c_good.mp4"):
        (alone_root / "clips").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clips / name, alone_root / "clips" / name)
    alone_config = replace_sources(tmp_path / "alone.yaml", quota=2)
    alone = run_build(small_options(alone_config, alone_root, tmp_path / "alone-run", limit=None))
    assert rows_by_pair_id(alone.run_dir) == got

    # Skips are final: the same command again makes no call and changes nothing.
    calls_before = calls_made(out)
    again = run_build(replace(small_options(config, root, out, limit=None), allow_shortfall=True))
    assert calls_made(out) == calls_before and rows_by_pair_id(out) == got
    assert again.info.counts.skip_reasons == c.skip_reasons


def test_bad_file_kinds_cover_the_issue_list() -> None:
    kinds = {reason for _writer, reason in BAD_FILES.values()}
    assert {"empty_file", "truncated", "not_a_video", "no_video_stream"} <= kinds
    assert {"empty.mp4", "text.mp4", "random.mp4", "audio_only.mp4"} <= set(BAD_FILES)


# -- an OpenAI-compatible server that fails ----------------------------------------------------------


class FlakyModelServer:
    """`model_reply` for every request, except that while `fault` is set, every critique request about
    one video (the first one whose critique arrives) fails that way: that video cannot finish until
    the server is healthy again, while the others can."""

    TIMEOUT_S = 1.0  # generous: a healthy reply must never miss it on a loaded CI machine

    def __init__(self) -> None:
        self.fault: str | None = None
        self.failed = 0
        self.poisoned: str | None = None
        self._lock = threading.Lock()
        self.server = FakeServer(self._reply)

    def _fails(self, body: dict) -> bool:
        if not self.fault or "issues" not in request_schema(body).get("properties", {}):
            return False
        video = video_digest(body)
        with self._lock:
            self.poisoned = self.poisoned or video
            if video != self.poisoned:
                return False
            self.failed += 1
            return True

    def _reply(self, n: int, body: dict, headers: dict) -> tuple[int, str, float]:
        if self._fails(body):
            if self.fault == "http_500":
                return 500, '{"error": {"message": "CUDA error: device-side assert triggered"}}', 0.0
            if self.fault == "timeout":
                return 200, completion(model_reply(body)), 3 * self.TIMEOUT_S
            return 200, "<html><body>502 Bad Gateway</body></html>", 0.0
        return 200, completion(model_reply(body)), 0.0

    def start_fault(self, fault: str) -> None:
        self.fault, self.failed, self.poisoned = fault, 0, None

    @property
    def requests(self) -> int:
        return len(self.server.bodies)


@pytest.fixture(scope="module")
def flaky() -> Iterator[FlakyModelServer]:
    server = FlakyModelServer()
    yield server
    server.server.close()


@pytest.fixture(scope="module")
def openai_config(flaky: FlakyModelServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = {"backend": "openai", "name_or_path": "fake-vlm", "revision": "v1", "base_url": flaky.server.url,
             "max_retries": 1, "request_timeout_s": FlakyModelServer.TIMEOUT_S, "concurrency": 4}
    # one video of four may be left pending without failing the build (test_model_server.py: when it fails)
    return write_small_config(tmp_path_factory.mktemp("faults-openai") / "openai.yaml",
                              {"model": model, "stages": {"max_failed_share": 0.5}})


@pytest.fixture(scope="module")
def openai_reference(openai_config: Path, demo_root: Path, flaky: FlakyModelServer,
                     tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults-openai-ref") / "clean"
    flaky.fault = None
    run_build(small_options(openai_config, demo_root, out))
    return out


@pytest.mark.parametrize("fault", ["http_500", "timeout", "non_json"])
def test_failing_server_leaves_videos_pending_and_a_rerun_completes(
        fault: str, openai_config: Path, demo_root: Path, openai_reference: Path, flaky: FlakyModelServer,
        tmp_path: Path) -> None:
    from videosavi.cli import app

    out = tmp_path / "run"
    args = ["build", "--config", str(openai_config), "--data-root", str(demo_root), "--out", str(out),
            "--limit-videos", str(SMALL_LIMIT), "--no-progress"]
    flaky.start_fault(fault)
    try:
        res = CliRunner().invoke(app, args)
    finally:
        flaky.fault = None
    assert res.exit_code == 0, res.output
    assert flaky.failed > 0
    info = RunDir(out).read_build_info()
    pending = info.counts.skip_reasons.get("pending_call_error", 0)
    assert pending > 0 and f"{pending} video(s) hit model-call errors" in res.output
    assert "run the same command again" in res.output
    assert pending == 1 and info.counts.videos_done == SMALL_LIMIT - 1
    assert sum(s.quarantined for s in info.counts.stages.values()) == 0  # a server fault is not the model's
    partial = rows_by_pair_id(out)
    reference_rows = rows_by_pair_id(openai_reference)
    assert partial and all(reference_rows[k] == v for k, v in partial.items())  # only right pairs so far
    with sqlite3.connect(out / "cache.sqlite") as db:
        logged = [e for (e,) in db.execute("SELECT error FROM call_errors")]
    assert logged and all(e for e in logged)

    before = cached_calls(out)
    sent = flaky.requests
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "hit model-call errors" not in res.output
    assert_resumed_like_reference(out, openai_reference, before)
    first_calls = sum(s.calls for s in info.counts.stages.values())
    # the re-run asked the server only for what was missing (and build.json counts both runs' calls)
    assert flaky.requests - sent == calls_made(out) - first_calls

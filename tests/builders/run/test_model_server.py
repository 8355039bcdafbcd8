"""A model server that fails the build (issue 21 item 2 and its bad-input list; issue 23 item 4).

Each case runs `savi build` against tests/helpers/fake_openai.py (a real server cannot be told to fail; the real
vLLM checks live in tests/builders/generate/models/test_vllm_engine.py, run by `make test-vllm`): a build that loses
every call or more than `stages.max_failed_share` of its videos exits 2 with one line naming the server, records
the reason in build.json's `stopped`, and the same command resumes to exactly the rows of an undisturbed build once
the server is fixed. Ctrl-C ends a build within seconds even while the server trickles its reply.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import SMALL_LIMIT, rows_by_pair_id, savi_command, subprocess_env, write_small_config
from tests.helpers.fake_openai import FakeServer, Trickle, completion, model_reply, request_schema
from videosavi.builders.run.runner import run_build
from videosavi.errors import BuildStoppedError
from videosavi.run_dir import RunDir

SERVED = "fake-vlm"


class Switchable:
    """A fake server whose behaviour a test switches: healthy (`model_reply`) or a named fault."""

    def __init__(self, **server: Any) -> None:
        self.fault: str | None = None
        self.count = 0
        self._lock = threading.Lock()
        self.server = FakeServer(self._reply, models=[SERVED], **server)

    def _reply(self, n: int, body: dict, headers: dict) -> tuple[int, Any, float]:
        with self._lock:
            self.count += 1
            count = self.count
        if self.fault == "http_500":
            return 500, '{"error": {"message": "EngineCore encountered a fatal error"}}', 0.0
        if self.fault == "no_structured_outputs" and request_schema(body):
            return 400, '{"error": {"message": "response_format json_schema is not supported"}}', 0.0
        if self.fault == "storm" and count % 3:  # two of every three calls: 429 or 503
            return (429, "slow down", 0.0) if count % 2 else (503, "busy", 0.0)
        if self.fault in ("trickle", "trickle_headers"):
            return 200, Trickle(completion(model_reply(body)).encode(), per_byte_s=1.0,
                                headers_too=self.fault == "trickle_headers"), 0.0
        return 200, completion(model_reply(body)), 0.0


@pytest.fixture
def served() -> Iterator[Switchable]:
    server = Switchable()
    yield server
    server.server.close()


def config_for(tmp_path: Path, url: str, name: str = "openai.yaml", **model: Any) -> Path:
    settings = {"backend": "openai", "name_or_path": SERVED, "revision": "v1", "base_url": url, "max_retries": 1,
                "request_timeout_s": 2.0, "concurrency": 4, **model}
    return write_small_config(tmp_path / name, {"model": settings})


def build_args(config: Path, root: Path, out: Path) -> list[str]:
    return ["build", "--config", str(config), "--data-root", str(root), "--out", str(out),
            "--limit-videos", str(SMALL_LIMIT), "--no-progress"]


@pytest.fixture
def reference(served: Switchable, demo_root: Path, tmp_path: Path) -> Path:
    """The undisturbed build every resumed one must equal."""
    out = tmp_path / "clean"
    run_build(_options(config_for(tmp_path, served.server.url, "ref.yaml"), demo_root, out))
    return out


def _options(config: Path, root: Path, out: Path) -> Any:
    from tests.helpers.build_helpers import small_options

    return small_options(config, root, out)


def test_a_build_that_loses_every_call_fails_in_one_line_and_resumes(
        served: Switchable, demo_root: Path, reference: Path, tmp_path: Path) -> None:
    from videosavi.cli import app

    config, out = config_for(tmp_path, served.server.url), tmp_path / "run"
    served.fault = "http_500"
    res = CliRunner().invoke(app, build_args(config, demo_root, out))
    assert res.exit_code == 2, res.output
    [line] = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert f"{SMALL_LIMIT} of {SMALL_LIMIT} videos failed at the question stage: gave up after 2 attempts: " \
           f"HTTP 500 from {served.server.url}/chat/completions: " in line
    assert "EngineCore encountered a fatal error" in line and "run the same command to resume" in line
    info = RunDir(out).read_build_info()
    assert info.stopped and "failed at the question stage" in info.stopped
    assert info.counts.pairs == 0 and info.counts.skip_reasons["pending_call_error"] == SMALL_LIMIT

    served.fault = None
    res = CliRunner().invoke(app, build_args(config, demo_root, out))
    assert res.exit_code == 0, res.output
    assert RunDir(out).read_build_info().stopped is None
    assert rows_by_pair_id(out) == rows_by_pair_id(reference)


def test_a_server_that_dies_mid_build_stops_it_early_and_resume_is_exact(
        served: Switchable, demo_root: Path, reference: Path, tmp_path: Path) -> None:
    # one video per window: the first video finishes, then the server is gone for good
    config = config_for(tmp_path, served.server.url, batch_size=1)
    out = tmp_path / "run"
    calls_per_video = 7  # 1 question + 2 x (answer, critique, refine) with the small config

    start = len(served.server.bodies)  # the reference build's calls came first

    def die_after_first_video(n: int, body: dict, headers: dict) -> tuple[int, Any, float]:
        if n - start == calls_per_video:
            threading.Thread(target=served.server.close, daemon=True).start()
        return served._reply(n, body, headers)

    served.server.behaviour = die_after_first_video
    with pytest.raises(BuildStoppedError) as err:
        run_build(_options(config, demo_root, out))
    message = str(err.value)
    assert "connection error to http://127.0.0.1" in message and "stopped before the other" in message
    info = RunDir(out).read_build_info()
    assert info.stopped and info.counts.videos_done == 1

    revived = Switchable()  # the server is back (on another port: base_url changes no data)
    try:
        result = run_build(_options(config_for(tmp_path, revived.server.url, batch_size=1), demo_root, out))
    finally:
        revived.server.close()
    assert result.info.stopped is None and result.pending_videos == 0
    assert rows_by_pair_id(out) == rows_by_pair_id(reference)


def test_a_server_without_structured_outputs_is_named(served: Switchable, demo_root: Path, tmp_path: Path) -> None:
    served.fault = "no_structured_outputs"
    with pytest.raises(BuildStoppedError) as err:
        run_build(_options(config_for(tmp_path, served.server.url), demo_root, tmp_path / "run"))
    assert "failed at the question stage" in str(err.value) and "HTTP 400" in str(err.value)
    assert "not supported" in str(err.value) and "(not retried)" in str(err.value)


@pytest.mark.slow(seconds=23)
def test_429_and_503_storms_are_ridden_out(served: Switchable, demo_root: Path, reference: Path,
                                          tmp_path: Path) -> None:
    served.fault = "storm"
    config = config_for(tmp_path, served.server.url, max_retries=3)
    result = run_build(_options(config, demo_root, tmp_path / "run"))
    assert result.info.stopped is None and result.pending_videos == 0
    assert rows_by_pair_id(tmp_path / "run") == rows_by_pair_id(reference)


@pytest.mark.parametrize(("url_of", "expected"), [
    (lambda s: s.server.url.removesuffix("/v1"), "answered 404: model.base_url must be the server's API root"),
    (lambda s: s.server.url.replace("/v1", "/v2"), "answered 404"),
])
def test_a_wrong_base_url_is_one_line(served: Switchable, demo_root: Path, tmp_path: Path, url_of: Any,
                                      expected: str) -> None:
    from videosavi.cli import app

    res = CliRunner().invoke(app, build_args(config_for(tmp_path, url_of(served)), demo_root, tmp_path / "run"))
    assert res.exit_code == 2 and expected in res.output
    assert len([x for x in res.output.splitlines() if x.strip()]) == 1, res.output
    assert not served.server.bodies


def test_a_wrong_model_name_is_one_line(served: Switchable, demo_root: Path, tmp_path: Path) -> None:
    from videosavi.cli import app

    config = config_for(tmp_path, served.server.url, name_or_path="Qwen/Qwen2-VL-7B-Instruct")
    res = CliRunner().invoke(app, build_args(config, demo_root, tmp_path / "run"))
    assert res.exit_code == 2
    assert f"serves {SERVED}, not 'Qwen/Qwen2-VL-7B-Instruct'" in res.output and not served.server.bodies


@pytest.mark.parametrize("fault", ["trickle", "trickle_headers"])
def test_ctrl_c_stops_a_build_within_seconds_while_the_server_trickles(
        served: Switchable, demo_root: Path, reference: Path, tmp_path: Path, fault: str) -> None:
    # a deadline far away: only Ctrl-C can end these calls early
    config = config_for(tmp_path, served.server.url, request_timeout_s=600.0)
    out = tmp_path / "run"
    served.fault = fault
    proc = subprocess.Popen(savi_command(*build_args(config, demo_root, out)), env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not served.server.bodies and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        time.sleep(1.0)  # the reply is trickling now
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stopped_after < 5.0
    assert "interrupted; run the same command to resume" in stderr

    served.fault = None
    result = run_build(_options(config, demo_root, out))
    assert result.info.stopped is None
    assert rows_by_pair_id(out) == rows_by_pair_id(reference)

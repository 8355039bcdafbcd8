"""olah as a child process: offline, loopback only, the store as its mirrors path, ready when it answers.

olah (a Hub mirror server) treats every bare repository under its `mirrors-path` as a Hub repo. It
runs offline (never contacts huggingface.co) and has no upload routes. It listens on an internal
loopback port that only `front.HubFront` talks to; the links it writes point at the front's address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from videosavi.errors import HubError

LOOPBACK = "127.0.0.1"
# The unroutable upstream olah would contact if it ever tried (it does not, offline).
_NOWHERE = "127.0.0.1:9"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel stop olah if the process that started it dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def endpoint_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """Does a hub API answer at `endpoint`? Any HTTP answer counts: olah's own index page is a 500 in
    0.5.4, its API routes are fine."""
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/api/datasets/videosavi/ping/refs", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def olah_config(store: Path, port: int, cache: Path, host: str = LOOPBACK, public_netloc: str | None = None) -> str:
    """olah's TOML: offline, serving `store` as its mirrors path, links pointing at `public_netloc`."""

    def q(value: str) -> str:  # a TOML basic string (JSON string escapes are valid TOML)
        return json.dumps(value)

    public = public_netloc or f"{host}:{port}"
    return "\n".join([
        "[basic]",
        f"host = {q(host)}",
        f"port = {port}",
        f"repos-path = {q(str(cache))}",
        'hf-scheme = "http"',
        f"hf-netloc = {q(_NOWHERE)}",
        f"hf-lfs-netloc = {q(_NOWHERE)}",
        'mirror-scheme = "http"',
        f"mirror-netloc = {q(public)}",
        f"mirror-lfs-netloc = {q(public)}",
        f"mirrors-path = [{q(str(store))}]",
        "",
        "[accessibility]",
        "offline = true",
        "",
    ])


class OlahProcess:
    """One olah child process in `work` (config, cache and logs there; output to `log_path`)."""

    def __init__(self, store: Path, work: Path, *, host: str = LOOPBACK, public_netloc: str | None = None,
                 log_path: Path | None = None) -> None:
        self.store, self.work, self.host = store, work, host
        self.public_netloc = public_netloc
        self.log_path = log_path or work / "olah.out"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        config = self.work / "olah.toml"
        config.write_text(olah_config(self.store, port, self.work / "cache", self.host, self.public_netloc),
                          encoding="utf-8")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        code = "import sys; from olah.server import cli; sys.argv = ['olah-cli'] + sys.argv[1:]; cli()"
        with open(self.log_path, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-c", code, "-c", str(config), "--log-path", str(self.work / "logs")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.work,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def _answers(self) -> bool:
        return endpoint_answers(self.url)

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        except OSError:
            return ""

    def start(self, pick_port: Callable[[], int], timeout_s: float, attempts: int = 3) -> OlahProcess:
        """Start on a port from `pick_port()` (retrying with a new one if the bind race is lost)."""
        for attempt in range(attempts):
            self.port = pick_port()
            self._proc = self._spawn(self.port)
            deadline = time.monotonic() + timeout_s
            exited = False
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    exited = True  # e.g. the port was taken between our probe and its bind
                    break
                if self._answers():
                    return self
                time.sleep(0.2)
            tail = self.log_tail()
            self.stop()
            if not exited or attempt == attempts - 1:
                raise HubError(f"olah did not start on {self.host}:{self.port} within {timeout_s:.0f} s"
                               + (f":\n{tail}" if tail else ""))
        raise AssertionError("unreachable")  # pragma: no cover

    def poll(self) -> int | None:
        """None while running, else its exit code (0 when it was never started)."""
        return self._proc.poll() if self._proc is not None else 0

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

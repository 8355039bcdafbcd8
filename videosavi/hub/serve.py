"""Serve the local store read-only over the Hub's HTTP API with olah, on loopback only.

olah (a Hub mirror server) treats every bare repository under its `mirrors-path` as a Hub repo, so
with `HF_ENDPOINT=http://127.0.0.1:PORT` stock `datasets.load_dataset(repo, revision="iterN")`,
`huggingface_hub` and the Hub's `refs` API work unchanged. It runs offline (never contacts
huggingface.co), binds 127.0.0.1, and has no upload routes, so the store cannot be changed through
it. Known olah 0.5.4 limits (see docs/publishing.md): no Range requests, 401 for unknown revisions,
and small binary files break its file routes (publishing refuses those).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from videosavi.errors import HubError
from videosavi.paths import default_store

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8090
# The unroutable upstream olah would contact if it ever tried (it does not, offline).
_NOWHERE = "127.0.0.1:9"


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports free right now (bind to 0); olah binds it moments later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Would a server fail to bind `port`? (SO_REUSEADDR as uvicorn sets it, so TIME_WAIT is free.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel stop olah if the process that started it dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def endpoint_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """Does a hub API answer at `endpoint`? Any HTTP answer counts: olah's own index page is a 500
    in 0.5.4, its API routes are fine."""
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/api/datasets/videosavi/ping/refs", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def olah_config(store: Path, port: int, cache: Path, host: str = LOOPBACK) -> str:
    """olah's TOML: offline, serving `store` as its mirrors path, links pointing back at itself."""

    def q(value: str) -> str:  # a TOML basic string (JSON string escapes are valid TOML)
        return json.dumps(value)

    return "\n".join([
        "[basic]",
        f"host = {q(host)}",
        f"port = {port}",
        f"repos-path = {q(str(cache))}",
        'hf-scheme = "http"',
        f"hf-netloc = {q(_NOWHERE)}",
        f"hf-lfs-netloc = {q(_NOWHERE)}",
        'mirror-scheme = "http"',
        f"mirror-netloc = {q(f'{host}:{port}')}",
        f"mirror-lfs-netloc = {q(f'{host}:{port}')}",
        f"mirrors-path = [{q(str(store))}]",
        "",
        "[accessibility]",
        "offline = true",
        "",
    ])


class HubServer:
    """olah over a store, as a context manager: started on enter (ready when it answers), stopped on exit.

    `port=0` picks a free port; `endpoint` is the value for `HF_ENDPOINT`.
    """

    def __init__(self, store: str | Path | None = None, port: int = 0, *, host: str = LOOPBACK,
                 startup_timeout_s: float = 60.0, log_path: str | Path | None = None) -> None:
        self.store = Path(store).expanduser().resolve() if store else default_store().resolve()
        self.requested_port = port
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _spawn(self, port: int, work: Path) -> subprocess.Popen[bytes]:
        config = work / "olah.toml"
        config.write_text(olah_config(self.store, port, work / "cache"), encoding="utf-8")
        log = self.log_path or work / "olah.out"
        log.parent.mkdir(parents=True, exist_ok=True)
        code = "import sys; from olah.server import cli; sys.argv = ['olah-cli'] + sys.argv[1:]; cli()"
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-c", code, "-c", str(config), "--log-path", str(work / "logs")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def _answers(self) -> bool:
        return endpoint_answers(self.endpoint)

    def _log_tail(self, work: Path) -> str:
        log = self.log_path or work / "olah.out"
        try:
            return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:])
        except OSError:
            return ""

    def start(self) -> HubServer:
        if self._proc is not None:
            return self
        (self.store / "datasets").mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="videosavi-olah-")
        work = Path(self._tmp.name)
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            port = self.requested_port or free_port(self.host)
            if self.requested_port and port_in_use(port, self.host):
                self.stop()
                raise HubError(f"port {port} on {self.host} is already in use; pass another --port")
            self.port = port
            self._proc = self._spawn(port, work)
            deadline = time.monotonic() + self.startup_timeout_s
            exited = False
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    exited = True  # e.g. the port was taken between our probe and its bind
                    break
                if self._answers():
                    return self
                time.sleep(0.2)
            tail = self._log_tail(work)
            self._terminate()
            if not exited or attempt == attempts - 1:
                self.stop()
                raise HubError(f"olah did not start on {self.host}:{port} within {self.startup_timeout_s:.0f} s"
                               + (f":\n{tail}" if tail else ""))
        raise AssertionError("unreachable")  # pragma: no cover

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        self._terminate()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def wait(self) -> int:
        """Block until the server exits (the CLI's foreground mode); returns its exit code."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

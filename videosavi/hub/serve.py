"""Serve the local store read-only over the Hub's HTTP API, on loopback only.

Two parts, one address: olah (`olah.OlahProcess`, a child process on an internal loopback port) is
the engine that speaks the Hub's metadata API for bare git repositories, and `front.HubFront` (an
ASGI app run by uvicorn in a thread of this process, on the public port) answers every request first
so stock clients get the Hub's errors, byte ranges and file bytes where olah alone gets them wrong
(see front.py for which requests go where). With `HF_ENDPOINT=http://127.0.0.1:PORT`, stock
`datasets.load_dataset(repo, revision="iterN")`, `streaming=True`, `huggingface_hub` and
`pandas.read_parquet("hf://...")` work unchanged, and a missing revision raises instead of falling
back to a cached one. Nothing can be written through it.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from videosavi.errors import HubError
from videosavi.hub.olah import LOOPBACK, OlahProcess, endpoint_answers
from videosavi.paths import default_store
from videosavi.tmp_dirs import owned_tmpdir

__all__ = ["HubServer", "bind_listener", "endpoint_answers", "free_port"]


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports free right now (bind to 0); a server binds it moments later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def bind_listener(port: int, host: str = LOOPBACK) -> socket.socket:
    """The public socket, bound before anything starts (SO_REUSEADDR as uvicorn sets it), so a busy
    port is a clear error and `port=0` has no race between choosing and binding."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HubError(f"port {port} on {host} is already in use; pass another --port") from exc
    return sock


class HubServer:
    """The hub server over a store, as a context manager: started on enter (ready when it answers),
    stopped on exit. `port=0` picks a free port; `endpoint` is the value for `HF_ENDPOINT`.

    An explicit `store` must exist (HubError otherwise: serving an empty store by mistake hides a
    typo); the default store is created when missing. `log_path` receives olah's output.
    """

    def __init__(self, store: str | Path | None = None, port: int = 0, *, host: str = LOOPBACK,
                 startup_timeout_s: float = 60.0, log_path: str | Path | None = None) -> None:
        self.explicit_store = store is not None
        self.store = Path(store).expanduser().resolve() if store else default_store().resolve()
        self.requested_port = port
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._olah: OlahProcess | None = None
        self._uvicorn: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def olah_url(self) -> str | None:
        """olah's own (internal) address, for diagnostics; clients use `endpoint`."""
        return self._olah.url if self._olah is not None else None

    def _check_store(self) -> None:
        if self.explicit_store:
            if not self.store.is_dir():
                raise HubError(f"store {self.store} does not exist (publish into it first, or pass another --store)")
        else:
            (self.store / "datasets").mkdir(parents=True, exist_ok=True)

    def start(self) -> HubServer:
        if self._thread is not None:
            return self
        import uvicorn

        from videosavi.hub.front import HubFront

        self._check_store()
        self._sock = bind_listener(self.requested_port, self.host)
        self.port = int(self._sock.getsockname()[1])
        self._tmp = owned_tmpdir("hub")
        work = Path(self._tmp.name)
        try:
            self._olah = OlahProcess(self.store, work, host=self.host, public_netloc=f"{self.host}:{self.port}",
                                     log_path=self.log_path).start(lambda: free_port(self.host), self.startup_timeout_s)
            app = HubFront(self.store, self._olah.url, work / "blobs")
            config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, log_config=None)
            self._uvicorn = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [self._sock]},
                                            name="videosavi-hub-front", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + self.startup_timeout_s
            while not self._uvicorn.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise HubError(f"the hub server did not start on {self.endpoint} within "
                                   f"{self.startup_timeout_s:.0f} s")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._uvicorn = None
        if self._olah is not None:
            self._olah.stop()
            self._olah = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def wait(self) -> int:
        """Block until the server stops (the CLI's foreground mode); returns olah's exit code, or 0.

        Polls rather than joining forever, so Ctrl-C / SIGTERM (raised as KeyboardInterrupt in the
        main thread by the CLI) is handled at once.
        """
        while self._thread is not None and self._thread.is_alive():
            code = self._olah.poll() if self._olah is not None else 0
            if code is not None:
                return code or 1  # olah went away: the server cannot answer metadata any more
            self._thread.join(timeout=0.5)
        return 0

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

"""Serve the local store read-only over the Hub's HTTP API, on loopback only.

One part: `front.HubFront` (an ASGI app run by uvicorn in a thread of this process) answers every
read-only route of the Hub's API from the store's bare git repositories (front.py lists them).
With `HF_ENDPOINT=http://127.0.0.1:PORT`, stock
`datasets.load_dataset(repo, revision="iterN")`, `streaming=True`, `huggingface_hub` and
`pandas.read_parquet("hf://...")` work unchanged, and a missing revision raises instead of falling
back to a cached one. Nothing can be written through it.
"""

from __future__ import annotations

import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TextIO

from videosavi.errors import HubError
from videosavi.local_server import LOOPBACK, BackgroundServer, bind_listener
from videosavi.paths import default_store
from videosavi.tmp_dirs import owned_tmpdir

__all__ = ["HubServer", "bind_listener", "endpoint_answers", "free_port"]


def endpoint_answers(endpoint: str, timeout: float = 2.0) -> bool:
    """Does a hub API answer at `endpoint`? Any HTTP answer counts (a 404 for the probe repository too)."""
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/api/datasets/videosavi/ping/refs", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS reports free right now (bind to 0); a server binds it moments later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class HubServer:
    """The hub server over a store, as a context manager: started on enter (ready when it answers),
    stopped on exit. `port=0` picks a free port; `endpoint` is the value for `HF_ENDPOINT`.

    An explicit `store` must be a store folder (HubError otherwise, saying what is there instead:
    serving an empty store by mistake hides a typo); the default store is created when missing.
    `log_path` receives one line per request (method, path, status; never a header, so no token).
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
        self._log: TextIO | None = None
        self._server: BackgroundServer | None = None
        self._sock: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _check_store(self) -> None:
        if not self.explicit_store:
            (self.store / "datasets").mkdir(parents=True, exist_ok=True)
            return
        if not self.store.exists():
            raise HubError(f"store {self.store} does not exist (publish into it first, or pass another --store)")
        if not self.store.is_dir():
            raise HubError(f"store {self.store} is a file, not a store folder (a store is the folder `savi publish "
                           "--store` wrote, holding datasets/ORG/NAME); pass that folder")
        if not (self.store / "datasets").is_dir():
            raise HubError(f"store {self.store} holds no datasets/ folder, so it is not a store (a store is the "
                           "folder `savi publish --store` wrote); publish into it first, or pass another --store")

    def start(self) -> HubServer:
        if self._server is not None:
            return self
        from videosavi.hub.front import HubFront

        self._check_store()
        self._sock = bind_listener(self.requested_port, self.host, HubError)
        self.port = int(self._sock.getsockname()[1])
        self._tmp = owned_tmpdir("hub")
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
            app = HubFront(self.store, Path(self._tmp.name) / "blobs", access_log=self._log)
            self._server = BackgroundServer(app, self._sock, "videosavi-hub-front", lifespan="on")
            if not self._server.start(self.startup_timeout_s):
                raise HubError(f"the hub server did not start on {self.endpoint} within "
                               f"{self.startup_timeout_s:.0f} s")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def wait(self) -> int:
        """Block until the server stops (the CLI's foreground mode); returns 0.

        Polls rather than joining forever, so Ctrl-C / SIGTERM (raised as KeyboardInterrupt in the
        main thread by the CLI) is handled at once.
        """
        if self._server is not None:
            self._server.wait()
        return 0

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

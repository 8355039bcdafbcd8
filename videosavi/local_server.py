"""An ASGI app served on loopback by uvicorn in a background thread of this process: what the hub server
(`savi hub serve`) and the rater page (`savi humaneval serve`) both are underneath.

The listening socket is bound before anything starts (SO_REUSEADDR, as uvicorn sets it), so a busy port
is a clear error and `port=0` has no race between choosing and binding.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Literal

LOOPBACK = "127.0.0.1"


def bind_listener(port: int, host: str = LOOPBACK, error: type[Exception] = OSError) -> socket.socket:
    """The public socket, bound; `error` (the caller's error class) names a busy port in one line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise error(f"port {port} on {host} is already in use; pass another --port") from exc
    return sock


class BackgroundServer:
    """uvicorn serving `app` on `sock` in a daemon thread named `name`."""

    def __init__(self, app: Any, sock: socket.socket, name: str,
                 lifespan: Literal["auto", "on", "off"] = "off") -> None:
        import uvicorn

        config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False, log_config=None)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)

    def start(self, timeout_s: float) -> bool:
        """Start and wait until it serves; False when the thread died or `timeout_s` passed first."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def wait(self) -> None:
        """Block while it serves. Polls rather than joining forever, so Ctrl-C (a KeyboardInterrupt in the
        main thread) is handled at once."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)

"""`savi humaneval serve`: one rater's page on 127.0.0.1, until Ctrl-C.

One rater per server and one server per filled sheet: the sheet's lock (`videosavi.locking`, held
for the server's life) refuses a second server on the same file, whose saves would overwrite the
first one's answers. The lock dies with the process, so a crashed server never blocks the next one.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.errors import HumanEvalError
from videosavi.locking import exclusive
from videosavi.workflows.humaneval.rated_sheet import RatedSheet, default_out
from videosavi.workflows.humaneval.rater_page.app import RaterPage, rater_app
from videosavi.workflows.humaneval.rater_page.media import SheetMedia

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class ServeOptions:
    sheet: Path
    rater: str
    roots: dict[str, Path]
    out: Path | None = None
    port: int = DEFAULT_PORT
    decode_timeout_s: float = 60.0


class RaterServer:
    """The page over one rater's sheet, as a context manager: locked, loaded and listening on enter."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.out = Path(options.out) if options.out else default_out(options.sheet, options.rater)
        self.port = options.port
        self.page: RaterPage | None = None
        self.missing: list[tuple[int, str]] = []
        self._stack = ExitStack()
        self._uvicorn: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def __enter__(self) -> RaterServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        import uvicorn

        out = self.out.resolve()
        self._stack.enter_context(exclusive(out.parent, f"savi humaneval serve ({self.options.rater})",
                                            name=f".{out.name}.lock"))
        rated = RatedSheet.open(self.options.sheet, self.out, self.options.rater)
        media = SheetMedia([i.video for i in rated.items], self.options.roots, [i.clip for i in rated.items],
                           timeout_s=self.options.decode_timeout_s)
        self._stack.callback(media.close)
        self.missing = media.missing()
        self.page = RaterPage(rated, media)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, self.options.port))
        except OSError as exc:
            sock.close()
            raise HumanEvalError(f"port {self.options.port} on {LOOPBACK} is already in use; pass another "
                                 "--port") from exc
        self._stack.callback(sock.close)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(rater_app(self.page), lifespan="off", log_level="warning", access_log=False,
                                log_config=None)
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]},
                                        name="videosavi-rater-page", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise HumanEvalError(f"the rater page did not start on {self.url}")
            time.sleep(0.02)

    def wait(self) -> None:
        """Block while the server runs (the CLI's foreground; Ctrl-C interrupts)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._uvicorn = None
        self._stack.close()

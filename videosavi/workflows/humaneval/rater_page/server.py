"""`savi humaneval serve`: one rater's page on 127.0.0.1, until Ctrl-C.

One rater per server and one server per filled sheet: the sheet's lock (`videosavi.locking`, held
for the server's life) refuses a second server on the same file, whose saves would overwrite the
first one's answers. The lock dies with the process, so a crashed server never blocks the next one.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from videosavi.errors import HumanEvalError
from videosavi.local_server import LOOPBACK, BackgroundServer, bind_listener
from videosavi.locking import exclusive
from videosavi.workflows.humaneval.rated_sheet import RatedSheet, default_out
from videosavi.workflows.humaneval.rater_page.app import RaterPage, rater_app
from videosavi.workflows.humaneval.rater_page.media import SheetMedia

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
        self._server: BackgroundServer | None = None

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
        out = self.out.resolve()
        self._stack.enter_context(exclusive(out.parent, f"savi humaneval serve ({self.options.rater})",
                                            name=f".{out.name}.lock"))
        rated = RatedSheet.open(self.options.sheet, self.out, self.options.rater)
        media = SheetMedia([i.video for i in rated.items], self.options.roots, [i.clip for i in rated.items],
                           timeout_s=self.options.decode_timeout_s)
        self._stack.callback(media.close)
        self.missing = media.missing()
        self.page = RaterPage(rated, media)
        sock = bind_listener(self.options.port, LOOPBACK, HumanEvalError)
        self._stack.callback(sock.close)
        self.port = int(sock.getsockname()[1])
        self._server = BackgroundServer(rater_app(self.page), sock, "videosavi-rater-page")
        if not self._server.start(timeout_s=30):
            raise HumanEvalError(f"the rater page did not start on {self.url}")

    def wait(self) -> None:
        """Block while the server runs (the CLI's foreground; Ctrl-C interrupts)."""
        if self._server is not None:
            self._server.wait()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._stack.close()

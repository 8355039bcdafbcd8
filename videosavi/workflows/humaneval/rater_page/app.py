"""The rater page's HTTP side (Starlette): the page, one item at a time as JSON, each answer saved
as it is given, and the item's video (or frames of its clip span).

What the page can learn is what the sheet shows a rater: the item's opaque id, the question, the
two answers in the sheet's order and the clip span. The key is never read; the sheet has no
question type and no pair id, and nothing here says which answer the model chose. Videos are
addressed by item number only. The server listens on 127.0.0.1 and answers only requests whose
Host is that address (or localhost), so a web page elsewhere cannot reach it through DNS tricks,
and takes answers only from its own page (a browser names the page a write comes from in `Origin`),
so another site open in the rater's browser cannot write into the sheet.
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from videosavi.workflows.humaneval.judgements import InvalidJudgement
from videosavi.workflows.humaneval.rated_sheet import FIELDS, RatedSheet
from videosavi.workflows.humaneval.rater_page.media import SheetMedia

MAX_BODY_BYTES = 1 << 20  # one answer, a comment included; far above any note a rater types
MAX_RANGE_HEADER = 200  # a longer Range header is not a browser's: 416 before any int() of its digits


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class RaterPage:
    """The page's state: the rated sheet (saved on every change, one writer: this lock) and the media."""

    def __init__(self, rated: RatedSheet, media: SheetMedia) -> None:
        self.rated = rated
        self.media = media
        self.lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        return {"rater": self.rated.rater, "total": len(self.rated.items), "done": self.rated.done,
                "first_unrated": self.rated.first_unrated(), "out": str(self.rated.out)}

    def item(self, index: int) -> dict[str, Any]:
        item = self.rated.items[index]
        start, end = item.clip
        check = self.media.check(index)
        return {
            "index": index, "item_id": item.item_id, "question": item.question,
            "answer_A": item.answer_A, "answer_B": item.answer_B,
            "clip_start": start, "clip_end": end,
            "video": {"playable": check.playable, "problem": check.problem, "type": check.media_type},
            "answers": {f: self.rated.answers[index].get(f, "") for f in FIELDS},
            "complete": self.rated.is_complete(index),
        }


def _index(request: Request, page: RaterPage) -> int | None:
    try:
        index = int(request.path_params["index"])
    except (KeyError, ValueError):
        return None
    return index if 0 <= index < len(page.rated.items) else None


def rater_app(page: RaterPage) -> Starlette:
    """The ASGI app over one rater's sheet."""
    html = resources.files("videosavi.workflows.humaneval.rater_page").joinpath("page.html").read_text(encoding="utf-8")

    async def home(request: Request) -> Response:
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def state(request: Request) -> Response:
        with page.lock:
            return JSONResponse(page.state())

    async def get_item(request: Request) -> Response:
        index = _index(request, page)
        if index is None:
            return _error(404, "no such item")
        return JSONResponse(await run_in_threadpool(page.item, index))

    async def put_item(request: Request) -> Response:
        """Save some judgements of one item (PUT from the page, POST from `sendBeacon` as the tab closes)."""
        index = _index(request, page)
        if index is None:
            return _error(404, "no such item")
        origin = request.headers.get("origin")
        if origin and origin.partition("://")[2] != request.headers.get("host"):
            return _error(403, "answers are taken from the rater page itself only")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"an answer holds at most {MAX_BODY_BYTES:,} bytes")
        try:
            values = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in values.items()):
            return _error(400, "expected a JSON object of text values")
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            return _error(400, f"unknown field(s) {', '.join(unknown)}; the sheet's are {', '.join(FIELDS)}")

        def save() -> dict[str, Any]:
            with page.lock:
                page.rated.set(index, values)
                return {**page.state(), "complete": page.rated.is_complete(index),
                        "answers": {f: page.rated.answers[index].get(f, "") for f in FIELDS}}

        try:
            result = await run_in_threadpool(save)
        except InvalidJudgement as exc:
            return _error(400, str(exc))
        except OSError as exc:
            return _error(507, f"could not save to {page.rated.out}: {exc.strerror or exc}; the answer was not "
                               "recorded, try again")
        return JSONResponse(result)

    async def video(request: Request) -> Response:
        index = _index(request, page)
        if index is None:
            return _error(404, "no such item")
        check = await run_in_threadpool(page.media.check, index)
        if check.path is None:
            return _error(404, check.problem or "no video")
        if len(request.headers.get("range", "")) > MAX_RANGE_HEADER:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{check.path.stat().st_size}"})
        return FileResponse(check.path, media_type=check.media_type, headers={"Cache-Control": "no-store"})

    async def frames(request: Request) -> Response:
        index = _index(request, page)
        if index is None:
            return _error(404, "no such item")
        result = await run_in_threadpool(page.media.frames, index)
        if "problem" in result:
            return _error(422, result["problem"])
        return JSONResponse({"count": len(result["jpegs"]), "times": result["times"]})

    async def frame(request: Request) -> Response:
        index = _index(request, page)
        if index is None:
            return _error(404, "no such item")
        result = await run_in_threadpool(page.media.frames, index)
        try:
            k = int(request.path_params["k"])
            jpeg = result["jpegs"][k] if k >= 0 else None
        except (KeyError, ValueError, IndexError):
            jpeg = None
        if jpeg is None:
            return _error(404, result.get("problem") or "no such frame")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    routes = [
        Route("/", home),
        Route("/api/state", state),
        Route("/api/items/{index}", get_item, methods=["GET"]),
        Route("/api/items/{index}", put_item, methods=["PUT", "POST"]),
        Route("/api/items/{index}/video", video),
        Route("/api/items/{index}/frames", frames),
        Route("/api/items/{index}/frames/{k}.jpg", frame),
    ]
    hosts = ["127.0.0.1", "localhost"]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])

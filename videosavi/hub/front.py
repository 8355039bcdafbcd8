"""The thin layer `savi hub serve` puts in front of olah, so stock Hub clients get the Hub's answers.

olah 0.5.4 serves a store of bare git repositories as a Hub mirror, but three of its answers make
stock clients misbehave: an unknown revision is a 401 (`datasets` then falls back to whatever it
cached, silently), a `Range` request gets 200 and the whole file (`streaming=True` and
`pandas.read_parquet("hf://...")` break on files over a few MB), and a non-UTF-8 file of 121-149
bytes is a 500 (it is sniffed as a git-lfs pointer). This ASGI app answers every request first:

- **Checked here, for every repository route:** the method (only GET/HEAD, and POST for the
  read-only `paths-info`; anything else is 405 with `Allow`, so the store cannot be changed), the
  repository (404 `X-Error-Code: RepoNotFound`) and the revision, looked up by exact name in the
  repository's refs or as a full commit sha (404 `RevisionNotFound`; never a rev expression such as
  `iter2~1`, which olah would hand to GitPython). huggingface_hub maps these codes to
  `RepositoryNotFoundError` / `RevisionNotFoundError`, which `datasets` re-raises instead of falling
  back to its cache.
- **Served here from git** (`git_tree.GitTree`), because they read file contents or sizes, which is
  where olah is wrong: `resolve` (file bytes and HEAD metadata: `ETag` = git blob id, `X-Repo-Commit`,
  `Content-Length`; single and multiple byte ranges as 206 through Starlette's `FileResponse`, a
  malformed or unsatisfiable `Range` as 416; a missing file as 404 `EntryNotFound` carrying
  `X-Repo-Commit`, which huggingface_hub caches as a known absence), the `tree` listing and
  `paths-info` (sizes and blob ids from git, `lastCommit` for `expand=true`).
- **Proxied to olah** with the revision replaced by the commit sha already resolved: repository and
  revision info (`/api/datasets/<repo>[/revision/<rev>]`: card data, siblings, sha), `refs`,
  `commits`, and any route that is not about a repository. olah reads no file contents for these
  beyond the README, so its pointer sniffing and missing ranges cannot bite; the Authorization
  header is never forwarded.

File bytes are read from git once per blob into a content-addressed cache (`blob_cache/<blob id>`,
the server's temporary folder) and ranges are served by seeking in that file; a commit sha's
lookups are cached for the server's lifetime, since commits are immutable. Names (tags, branches)
are resolved on every request, so a tag moved by `savi publish --force` is seen at once.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from videosavi.errors import HubError, RevisionNotFoundError
from videosavi.hub.byte_range import check_range, unsatisfied_content_range
from videosavi.hub.git_tree import GitTree, TreeEntry
from videosavi.hub.hub_routes import Route, parse_route
from videosavi.hub.names import split_repo_id
from videosavi.hub.plan import BRANCH
from videosavi.hub.store import GitStore

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

READ_METHODS = ("GET", "HEAD")
# Headers passed to olah: nothing that identifies the user (no Authorization, no cookies).
_FORWARD_HEADERS = ("accept", "user-agent", "content-type")
_FROM_OLAH_HEADERS = ("content-type", "etag", "link", "x-repo-commit")


def _header_safe(text: str) -> str:
    """HTTP header values are latin-1; a revision name typed by a user may not be."""
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace("\n", " ")


def hub_error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The Hub's error shape: JSON `{"error": message}`, `X-Error-Message`, and `X-Error-Code` when typed."""
    extra = {"X-Error-Message": _header_safe(message), **(headers or {})}
    if code:
        extra["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=extra)


def repo_not_found(repo: str) -> Response:
    return hub_error(404, f"Repository not found: {repo}", "RepoNotFound")


def revision_not_found(revision: str) -> Response:
    return hub_error(404, f"Invalid rev id: {revision}", "RevisionNotFound")


def entry_not_found(path: str, commit: str) -> Response:
    return hub_error(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit})


def read_only(allowed: tuple[str, ...]) -> Response:
    return hub_error(405, "This server is read-only: the store changes only through `savi publish`.",
                     headers={"Allow": ", ".join(allowed)})


def entry_json(entry: TreeEntry, last_commit: dict[str, str] | None = None) -> dict[str, Any]:
    """One entry as the Hub's tree and paths-info routes write it (huggingface_hub's RepoFile/RepoFolder)."""
    out: dict[str, Any] = {"type": entry.kind, "oid": entry.oid, "size": entry.size, "path": entry.path}
    if last_commit is not None:
        out["lastCommit"] = last_commit
    return out


class _RangedFile:
    """A FileResponse that sees the checked, canonical `Range` header instead of the client's."""

    def __init__(self, response: FileResponse, canonical_range: str | None) -> None:
        self.response, self.canonical_range = response, canonical_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.canonical_range is not None:
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
            scope = {**scope, "headers": [*headers, (b"range", self.canonical_range.encode("latin-1"))]}
        await self.response(scope, receive, send)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


class HubFront:
    """The ASGI app: `HubFront(store_root, olah_url, blob_cache)`; see the module docstring."""

    def __init__(self, store: str | Path, olah_url: str, blob_cache: str | Path) -> None:
        self.store = GitStore(store)
        self.olah_url = olah_url.rstrip("/")
        self.blob_cache = Path(blob_cache)
        self._trees: dict[str, GitTree] = {}
        self._client: httpx.AsyncClient | None = None

    # --- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self.answer(Request(scope, receive))
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(base_url=self.olah_url, timeout=120.0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- dispatch -----------------------------------------------------------------------------
    async def answer(self, request: Request) -> Response | _RangedFile:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        route = parse_route(raw.decode("latin-1"))
        method = request.method.upper()
        if route.kind == "other":
            if method not in READ_METHODS:
                return read_only(READ_METHODS)
            return await self._proxy(request, request.url.path)
        allowed = (*READ_METHODS, "POST") if route.kind == "paths-info" else READ_METHODS
        if method not in allowed:
            return read_only(allowed)
        if route.repo_type != "dataset":  # the store holds dataset repositories only
            return repo_not_found(route.repo)
        try:
            split_repo_id(route.repo)
        except HubError:
            return repo_not_found(route.repo)
        if not self.store.exists(route.repo):
            return repo_not_found(route.repo)
        if route.kind == "refs":
            return await self._proxy(request, f"/api/datasets/{route.repo}/refs")
        if route.kind == "repo-other":
            return hub_error(404, f"Not found: {request.url.path}")
        revision = BRANCH if route.revision is None and route.kind == "info" else route.revision
        if not revision:
            return revision_not_found("")
        try:
            sha = await run_in_threadpool(self.store.resolve, route.repo, revision)
        except RevisionNotFoundError:
            return revision_not_found(revision)
        if route.kind == "info":
            return await self._proxy(request, f"/api/datasets/{route.repo}/revision/{sha}")
        if route.kind == "commits":
            return await self._proxy(request, f"/api/datasets/{route.repo}/commits/{sha}")
        tree = self._tree(route.repo)
        if route.kind == "resolve":
            return await self._resolve(request, route, tree, sha)
        if route.kind == "tree":
            return await self._tree_listing(request, route, tree, sha)
        return await self._paths_info(request, tree, sha)

    def _tree(self, repo: str) -> GitTree:
        if repo not in self._trees:
            self._trees[repo] = GitTree(self.store.repo_dir(repo))
        return self._trees[repo]

    # --- served from git ----------------------------------------------------------------------
    async def _resolve(self, request: Request, route: Route, tree: GitTree, sha: str) -> Response | _RangedFile:
        entry = await run_in_threadpool(tree.lookup, sha, route.path)
        if entry is None or entry.kind != "file":
            return entry_not_found(route.path, sha)
        media_type = mimetypes.guess_type(route.path)[0] or "application/octet-stream"
        headers = {"X-Repo-Commit": sha, "ETag": f'"{entry.oid}"', "Accept-Ranges": "bytes"}
        range_header = request.headers.get("range")
        canonical = None
        if range_header is not None:
            decision = check_range(range_header, entry.size)
            if not decision.satisfiable:
                return hub_error(416, f"Requested range not satisfiable: {range_header}",
                                 headers={**headers, "Content-Range": unsatisfied_content_range(entry.size)})
            canonical = decision.header()
        elif request.method.upper() == "HEAD":  # metadata only: no need to read the blob
            return Response(status_code=200, media_type=media_type,
                            headers={**headers, "Content-Length": str(entry.size)})
        blob = await run_in_threadpool(tree.blob_file, entry.oid, self.blob_cache)
        return _RangedFile(FileResponse(blob, headers=headers, media_type=media_type, stat_result=os.stat(blob)),
                           canonical)

    async def _tree_listing(self, request: Request, route: Route, tree: GitTree, sha: str) -> Response:
        recursive, expand = _flag(request.query_params.get("recursive")), _flag(request.query_params.get("expand"))
        entries = await run_in_threadpool(tree.list_dir, sha, route.path, recursive)
        if entries is None:
            return entry_not_found(route.path, sha)
        return JSONResponse(await self._entries_json(tree, sha, list(entries), expand))

    async def _paths_info(self, request: Request, tree: GitTree, sha: str) -> Response:
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                return hub_error(400, "paths-info: the body is not JSON")
            paths = payload.get("paths") or []
            paths = [paths] if isinstance(paths, str) else list(paths)
            expand = bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode("utf-8", "replace"))
            paths, expand = form.get("paths", []), _flag((form.get("expand") or [""])[0])
        found = []
        for path in paths:
            entry = await run_in_threadpool(tree.lookup, sha, str(path).strip("/"))
            if entry is not None:
                found.append(entry)
        return JSONResponse(await self._entries_json(tree, sha, found, expand))

    async def _entries_json(self, tree: GitTree, sha: str, entries: list[TreeEntry], expand: bool) -> list[dict]:
        if not expand:
            return [entry_json(e) for e in entries]
        out = []
        for e in entries:
            last = await run_in_threadpool(tree.last_commit, sha, e.path)
            out.append(entry_json(e, {"id": last.id, "title": last.title, "date": last.date}))
        return out

    # --- proxied to olah ----------------------------------------------------------------------
    async def _proxy(self, request: Request, path: str) -> Response:
        if self._client is None:  # no lifespan (e.g. a bare ASGI test client): make one on first use
            self._client = httpx.AsyncClient(base_url=self.olah_url, timeout=120.0)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARD_HEADERS}
        headers["accept-encoding"] = "identity"
        try:
            upstream = await self._client.request(request.method, path, params=request.query_params,
                                                  headers=headers, content=await request.body() or None)
        except httpx.HTTPError as exc:
            return hub_error(502, f"the store's olah server did not answer: {type(exc).__name__}")
        keep = {k: v for k, v in upstream.headers.items() if k.lower() in _FROM_OLAH_HEADERS}
        return Response(upstream.content, status_code=upstream.status_code, headers=keep)

"""The hub server's ASGI app: the Hub's read-only API for dataset repositories, answered from git.

Every route huggingface_hub 2.x and `datasets` call to read a dataset is answered here from the bare
repositories of a store (one `git` call on exact object names per lookup; nothing else runs):

- `GET /api/datasets`: `list_datasets` (`search`, `author`, `filter`, `limit`, `full`, `expand`)
- `GET /api/datasets/<repo>[/revision/<rev>]`: `dataset_info`, `repo_info`, `repo_exists`,
  `revision_exists`, `resolve_revision` (`blobs=true`: sizes and blob ids; `expand=`)
- `GET /api/datasets/<repo>/refs`: `list_repo_refs`
- `GET /api/datasets/<repo>/commits/<rev>`: `list_repo_commits` (paged by `Link`, `expand[]=formatted`)
- `GET /api/datasets/<repo>/tree/<rev>[/<path>]`: `list_repo_tree`, `list_repo_files`,
  `verify_repo_checksums`, `HfFileSystem.ls`
- `POST /api/datasets/<repo>/paths-info/<rev>`: `get_paths_info`, `HfFileSystem.info`
- `GET/HEAD /datasets/<repo>/resolve/<rev>/<path>`: `hf_hub_download`, `snapshot_download`,
  `file_exists`, `get_hf_file_metadata`, `HfFileSystem.open` (byte ranges)
- `GET /api/datasets/<repo>/auth-check`: `auth_check` (read: 200; `/write`: 403, the server is read-only)
- `GET /api/whoami-v2`: `whoami`, 401 in the Hub's error shape (a local store has no users)

The Hub's error shape everywhere: JSON `{"error": ...}`, `X-Error-Message`, and `X-Error-Code` where
huggingface_hub maps it to a typed error (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`), so
`datasets` raises instead of falling back to a cached revision. A revision is looked up by exact name
in the repository's refs or as a full commit sha (never a rev expression such as `iter2~1`); an
annotated tag is served as the commit it names (`sha`, `X-Repo-Commit`). A path that is not a literal
entry (`..`, `.`, empty segments, NUL or other control bytes) is 404 `EntryNotFound`; text taken from
a request is escaped before it goes into a header. Any other method than GET/HEAD (and POST on
`paths-info`) is 405 with `Allow`, so nothing can be changed; any other route is 404.

File bytes are read from git once per blob into a content-addressed cache (`blob_cache/<blob id>`)
and byte ranges are served by seeking in that file (`byte_range` decides the header by RFC 9110).
What is read for a commit sha is cached for the server's lifetime (commits are immutable); names
(tags, branches) are resolved on every request, so a tag moved by `savi publish --overwrite` is seen at once.
"""

from __future__ import annotations

import json
import mimetypes
import os
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from videosavi.errors import HubError, RevisionNotFoundError, VideosaviError
from videosavi.hub.byte_range import check_range, unsatisfied_content_range
from videosavi.hub.git_tree import GitTree, TreeEntry
from videosavi.hub.hub_routes import Route, parse_route
from videosavi.hub.names import split_repo_id
from videosavi.hub.plan import BRANCH
from videosavi.hub.repo_meta import (
    LIST_PROPERTIES,
    card_data,
    commit_json,
    matches_listing,
    refs_json,
    repo_info_json,
    unknown_properties,
)
from videosavi.hub.store import GitStore

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

READ_METHODS = ("GET", "HEAD")
COMMITS_PER_PAGE = 50  # the Hub's page size for commit listings
MAX_LIST_LIMIT = 1000


def header_safe(text: str, limit: int = 500) -> str:
    """Header values are printable ASCII here: other characters (NUL, CR/LF, non-ASCII) are escaped,
    so text from a request can never break a response (h11 refuses a header holding a NUL)."""
    out = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def hub_error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The Hub's error shape: JSON `{"error": message}`, `X-Error-Message`, and `X-Error-Code` when typed."""
    extra = {"X-Error-Message": header_safe(message), **(headers or {})}
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
    """A FileResponse that sees the checked, canonical `Range` header (or none) instead of the client's."""

    def __init__(self, response: FileResponse, canonical_range: str | None) -> None:
        self.response, self.canonical_range = response, canonical_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]  # If-Range stays: our ETag
        if self.canonical_range is not None:
            headers.append((b"range", self.canonical_range.encode("latin-1")))
        await self.response({**scope, "headers": headers}, receive, send)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _expand(request: Request) -> list[str]:
    """`expand=a&expand=b` and `expand[]=a` alike."""
    return [*request.query_params.getlist("expand"), *request.query_params.getlist("expand[]")]


class HubFront:
    """The ASGI app: `HubFront(store_root, blob_cache, access_log=None)`; see the module docstring.

    `access_log`: a text file that gets one line per request (method, path, status), never a header.
    """

    def __init__(self, store: str | Path, blob_cache: str | Path, access_log: TextIO | None = None) -> None:
        self.store = GitStore(store)
        self.blob_cache = Path(blob_cache)
        self.access_log = access_log
        self._log_lock = threading.Lock()
        self._trees: dict[str, GitTree] = {}

    # --- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to set up or tear down: acknowledge both
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self.answer(request)
        except VideosaviError as exc:  # git failed on a repository that exists: a broken store, in one line
            response = hub_error(500, f"the store could not be read: {exc}")
        status = getattr(getattr(response, "response", response), "status_code", 0)
        self._log(request, status)
        await response(scope, receive, send)

    def _log(self, request: Request, status: int) -> None:
        if self.access_log is None:
            return
        raw = (request.scope.get("raw_path") or b"").decode("latin-1")
        with self._log_lock:
            self.access_log.write(f"{request.method} {header_safe(raw, 300)} {status}\n")
            self.access_log.flush()

    # --- dispatch -----------------------------------------------------------------------------
    async def answer(self, request: Request) -> Response | _RangedFile:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        route = parse_route(raw.decode("latin-1"))
        method = request.method.upper()
        allowed = (*READ_METHODS, "POST") if route.kind == "paths-info" else READ_METHODS
        if method not in allowed:
            return read_only(allowed)
        if route.kind == "other":
            return hub_error(404, f"Not found: {request.url.path}")
        if route.kind == "whoami":
            return hub_error(401, "Invalid credentials in Authorization header (a local store has no users)")
        if route.kind == "list":
            return await self._listing(request, route)
        if route.repo_type != "dataset":  # the store holds dataset repositories only
            return repo_not_found(route.repo)
        try:
            split_repo_id(route.repo)
        except HubError:
            return repo_not_found(route.repo)
        if not self.store.exists(route.repo):
            return repo_not_found(route.repo)
        if route.kind == "refs":
            refs = await run_in_threadpool(self.store.refs, route.repo)
            return JSONResponse(refs_json(refs, _flag(request.query_params.get("include_prs"))))
        if route.kind == "auth-check":
            if route.path == "write":
                return hub_error(403, "This server is read-only: nobody has write access.")
            return JSONResponse({})
        if route.kind == "repo-other":
            return hub_error(404, f"Not found: {request.url.path}")
        revision = BRANCH if route.revision is None and route.kind == "info" else route.revision
        if not revision:
            return revision_not_found("")
        try:
            sha = await run_in_threadpool(self.store.resolve, route.repo, revision)
        except RevisionNotFoundError:
            return revision_not_found(revision)
        tree = self._tree(route.repo)
        if route.kind == "info":
            return await self._info(request, route.repo, tree, sha)
        if route.kind == "commits":
            return await self._commits(request, tree, sha)
        if route.kind == "resolve":
            return await self._resolve(request, route, tree, sha)
        if route.kind == "tree":
            return await self._tree_listing(request, route, tree, sha)
        return await self._paths_info(request, tree, sha)

    def _tree(self, repo: str) -> GitTree:
        if repo not in self._trees:
            self._trees[repo] = GitTree(self.store.repo_dir(repo))
        return self._trees[repo]

    # --- repository metadata ------------------------------------------------------------------
    def _info_json(self, repo: str, tree: GitTree, sha: str | None, blobs: bool,
                   properties: list[str] | None) -> dict[str, Any]:
        files: list[TreeEntry] = []
        card = None
        created = modified = None
        if sha is not None:
            files = [e for e in tree.list_dir(sha, "", True) or () if e.kind == "file"]
            readme = tree.lookup(sha, "README.md")
            card = card_data(tree.blob_bytes(readme.oid)) if readme is not None and readme.kind == "file" else None
            created, modified = tree.commit_dates(sha)
        return repo_info_json(repo, sha, files, card, created_at=created, last_modified=modified, blobs=blobs,
                              properties=properties)

    async def _info(self, request: Request, repo: str, tree: GitTree, sha: str) -> Response:
        expand = _expand(request)
        bad = unknown_properties(expand)
        if bad:
            return hub_error(400, f"Invalid expand property: {', '.join(bad)}")
        blobs = _flag(request.query_params.get("blobs"))
        return JSONResponse(await run_in_threadpool(self._info_json, repo, tree, sha, blobs, expand or None))

    async def _listing(self, request: Request, route: Route) -> Response:
        q = request.query_params
        expand = _expand(request)
        bad = unknown_properties(expand)
        if bad:
            return hub_error(400, f"Invalid expand property: {', '.join(bad)}")
        if route.repo_type != "dataset":
            return JSONResponse([])
        try:
            limit = min(int(q.get("limit") or MAX_LIST_LIMIT), MAX_LIST_LIMIT)
        except ValueError:
            return hub_error(400, "limit must be a number")
        full = _flag(q.get("full"))
        properties = expand or (None if full else list(LIST_PROPERTIES))
        return JSONResponse(await run_in_threadpool(
            self._list_json, q.getlist("search"), q.get("author"), q.getlist("filter"), limit, properties,
            q.get("sort"), q.get("direction")))

    def _list_json(self, search: list[str], author: str | None, tags: list[str], limit: int,
                   properties: list[str] | None, sort: str | None, direction: str | None) -> list[dict[str, Any]]:
        """Every dataset repository of the store at the head of its main branch, filtered and sorted."""
        found = []
        datasets = self.store.root / "datasets"
        for repo_dir in sorted(datasets.glob("*/*")) if datasets.is_dir() else []:
            repo = f"{repo_dir.parent.name}/{repo_dir.name}"
            try:
                split_repo_id(repo)
            except HubError:
                continue
            if not self.store.exists(repo):
                continue
            info = self._info_json(repo, self._tree(repo), self.store.refs(repo).branches.get(BRANCH), False, None)
            if matches_listing(repo, info["cardData"], search=search, author=author, tags=tags):
                found.append(info)
        if sort in ("lastModified", "createdAt", "id"):
            found.sort(key=lambda i: str(i.get(sort) or ""), reverse=direction == "-1")
        keep = None if properties is None else {"_id", "id", *properties}
        return [{k: v for k, v in i.items() if keep is None or k in keep} for i in found[:limit]]

    async def _commits(self, request: Request, tree: GitTree, sha: str) -> Response:
        try:
            page = max(int(request.query_params.get("p") or 0), 0)
            per_page = min(max(int(request.query_params.get("limit") or COMMITS_PER_PAGE), 1), 1000)
        except ValueError:
            return hub_error(400, "p and limit must be numbers")
        formatted = "formatted" in _expand(request)
        commits, more = await run_in_threadpool(tree.commits, sha, page * per_page, per_page)
        headers = {}
        if more:
            headers["Link"] = f'<{request.url.include_query_params(p=page + 1)}>; rel="next"'
        return JSONResponse([commit_json(c, formatted) for c in commits], headers=headers)

    # --- files --------------------------------------------------------------------------------
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
            if decision.outcome == "unsatisfiable":
                return hub_error(416, f"Requested range not satisfiable: {range_header}",
                                 headers={**headers, "Content-Range": unsatisfied_content_range(entry.size)})
            canonical = decision.header() if decision.satisfiable else None
        if canonical is None and request.method.upper() == "HEAD":  # metadata only: no need to read the blob
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
            if not isinstance(payload, dict):
                return hub_error(400, "paths-info: the body is not a JSON object")
            paths = payload.get("paths") or []
            paths = [paths] if isinstance(paths, str) else list(paths) if isinstance(paths, list) else []
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

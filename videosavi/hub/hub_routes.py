"""Which Hub API call a request path is (pure), read from the raw, still percent-encoded path.

huggingface_hub puts a revision into a URL as one percent-encoded segment (`refs%2Ftags%2Fiter1`)
and a file path as one (`data%2Ftrain-...`, tree route) or several segments (resolve route), so the
revision must be cut out before anything is decoded: a decoded `/` inside a revision would shift
every later segment. The special refs the Hub writes unencoded (`refs/pr/N`, `refs/convert/X`) are
recognised as one revision.

Besides the repository routes, three routes are about no repository: the listing of a repo type
(`/api/datasets`), `whoami-v2`, and anything else (`other`, answered 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

RouteKind = Literal["info", "refs", "tree", "paths-info", "commits", "resolve", "auth-check", "list", "whoami",
                    "repo-other", "other"]
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel"}
_SPECIAL_REF_GROUPS = ("pr", "convert")


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    repo_type: str = ""  # "dataset", "model", ...
    repo: str = ""  # "org/name", decoded
    revision: str | None = None  # decoded; None = the default branch
    path: str = ""  # path inside the repository, decoded


def _split_revision(parts: list[str]) -> tuple[str | None, list[str]]:
    """(decoded revision, remaining raw segments) from `[rev, *rest]` or `[refs, pr|convert, X, *rest]`."""
    if not parts or not parts[0]:
        return None, []
    if parts[0] == "refs" and len(parts) >= 3 and parts[1] in _SPECIAL_REF_GROUPS:
        return unquote("/".join(parts[:3])), parts[3:]
    return unquote(parts[0]), parts[1:]


def _path(parts: list[str]) -> str:
    return unquote("/".join(parts)).strip("/")


def parse_route(raw_path: str) -> Route:
    """The Hub route a raw request path names (`other` for anything that is not about a repository)."""
    seg = raw_path.split("?", 1)[0].lstrip("/").split("/")
    if seg[0] == "api" and len(seg) == 2 and seg[1] == "whoami-v2":
        return Route("whoami")
    if len(seg) == 2 and seg[0] == "api" and seg[1] in REPO_TYPES:
        return Route("list", REPO_TYPES[seg[1]])
    if len(seg) == 3 and seg[0] == "api" and seg[1] in REPO_TYPES and seg[2]:
        return Route("info", REPO_TYPES[seg[1]], unquote(seg[2]))  # a repo id without an org: never ours
    if len(seg) >= 4 and seg[0] == "api" and seg[1] in REPO_TYPES:
        repo_type, repo, rest = REPO_TYPES[seg[1]], f"{unquote(seg[2])}/{unquote(seg[3])}", seg[4:]
        if not rest or rest == [""]:
            return Route("info", repo_type, repo)
        head, tail = rest[0], rest[1:]
        if head == "refs" and not [t for t in tail if t]:
            return Route("refs", repo_type, repo)
        if head == "auth-check" and tail in ([], [""], ["write"]):
            return Route("auth-check", repo_type, repo, path="write" if tail == ["write"] else "")
        if head in ("revision", "tree", "paths-info", "commits"):
            revision, remaining = _split_revision(tail)
            if revision is None:
                return Route("repo-other", repo_type, repo)
            if head == "revision":
                # The revision route has nothing after the revision: rejoin, so `a/b` stays one name.
                revision = unquote("/".join(tail)).rstrip("/")
                return Route("info", repo_type, repo, revision)
            if head == "tree":
                return Route("tree", repo_type, repo, revision, _path(remaining))
            if not [t for t in remaining if t]:
                return Route("paths-info" if head == "paths-info" else "commits", repo_type, repo, revision)
        return Route("repo-other", repo_type, repo)
    # /{type}/{org}/{name}/resolve/{rev}/{path} for datasets and spaces; /{org}/{name}/resolve/... for models
    if len(seg) >= 5 and seg[0] in ("datasets", "spaces", "kernels") and seg[3] == "resolve":
        revision, remaining = _split_revision(seg[4:])
        return Route("resolve", REPO_TYPES[seg[0]], f"{unquote(seg[1])}/{unquote(seg[2])}", revision,
                     _path(remaining))
    if len(seg) >= 4 and seg[2] == "resolve":
        revision, remaining = _split_revision(seg[3:])
        return Route("resolve", "model", f"{unquote(seg[0])}/{unquote(seg[1])}", revision, _path(remaining))
    return Route("other")

"""The Hub's JSON for a dataset repository, built from what git says about one commit (pure).

Shapes follow what huggingface_hub 2.x parses (`DatasetInfo`, `RepoSibling`, `GitRefs`,
`GitCommitInfo`): camelCase keys, dates as `2024-05-01T12:00:00.000Z`, siblings with `size` and
`blobId` only when the client asked for blobs (`?blobs=true`, what `files_metadata=True` sends), and
`lfs` absent because the store keeps every file as a plain git blob. A local store has no users,
downloads, likes or gating, so those are the values of a public repository nobody has touched.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from videosavi.hub.git_tree import CommitInfo, TreeEntry
from videosavi.hub.refs import Refs

# The properties `expand=` may ask for on a dataset (huggingface_hub's ExpandDatasetProperty_T); the Hub
# answers 400 for any other.
EXPAND_PROPERTIES = ("author", "cardData", "citation", "createdAt", "description", "disabled", "downloads",
                     "downloadsAllTime", "gated", "lastModified", "likes", "paperswithcode_id", "private",
                     "resourceGroup", "sha", "siblings", "tags", "trendingScore", "usedStorage")
# What a listing shows for each repository unless `full` or `expand` asks for more.
LIST_PROPERTIES = ("author", "createdAt", "disabled", "downloads", "gated", "lastModified", "likes", "private",
                   "sha", "tags")
_FRONT_MATTER = re.compile(r"\A\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def card_data(readme: bytes | None) -> dict[str, Any] | None:
    """The YAML front matter of a README as a dict; None when there is none or it does not parse."""
    if not readme:
        return None
    m = _FRONT_MATTER.match(readme.decode("utf-8", "replace"))
    if m is None:
        return None
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def sibling_json(entry: TreeEntry, blobs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rfilename": entry.path}
    if blobs:
        out.update(size=entry.size, blobId=entry.oid)
    return out


def repo_info_json(repo: str, sha: str | None, files: Sequence[TreeEntry], card: dict[str, Any] | None, *,
                   created_at: str | None, last_modified: str | None, blobs: bool,
                   properties: Iterable[str] | None = None) -> dict[str, Any]:
    """`/api/datasets/<repo>[/revision/<rev>]` (and one item of `/api/datasets`).

    `properties`: only these (plus `_id` and `id`), as `expand=` asks; None = everything.
    """
    tags = card.get("tags") if card else None
    full: dict[str, Any] = {
        "_id": hashlib.sha256(repo.encode()).hexdigest()[:24],
        "id": repo,
        "author": repo.split("/", 1)[0],
        "sha": sha,
        "lastModified": last_modified,
        "createdAt": created_at,
        "private": False,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "downloadsAllTime": 0,
        "likes": 0,
        "trendingScore": 0,
        "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
        "cardData": card,
        "citation": None,
        "description": None,
        "paperswithcode_id": None,
        "resourceGroup": None,
        "siblings": [sibling_json(e, blobs) for e in files],
        "usedStorage": sum(e.size for e in files),
    }
    if properties is None:
        return full
    keep = {"_id", "id", *properties}
    return {k: v for k, v in full.items() if k in keep}


def unknown_properties(requested: Iterable[str]) -> list[str]:
    return [p for p in requested if p not in EXPAND_PROPERTIES]


def refs_json(refs: Refs, include_prs: bool) -> dict[str, Any]:
    """`/api/datasets/<repo>/refs`: branches and tags with their (peeled) commits."""

    def group(names: dict[str, str], prefix: str) -> list[dict[str, str]]:
        return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": c} for n, c in sorted(names.items())]

    out: dict[str, Any] = {"branches": group(refs.branches, "refs/heads/"), "tags": group(refs.tags, "refs/tags/"),
                           "converts": []}
    if include_prs:
        out["pullRequests"] = []
    return out


def commit_json(commit: CommitInfo, formatted: bool) -> dict[str, Any]:
    """One item of `/api/datasets/<repo>/commits/<rev>`."""
    out: dict[str, Any] = {"id": commit.id, "title": commit.title, "message": commit.message,
                           "authors": [{"user": commit.author, "avatar": None}], "date": commit.date}
    if formatted:
        out["formatted"] = {"title": html.escape(commit.title), "message": html.escape(commit.message)}
    return out


def matches_listing(repo: str, card: dict[str, Any] | None, *, search: Sequence[str], author: str | None,
                    tags: Sequence[str]) -> bool:
    """Does `repo` pass the filters of `/api/datasets` (`search`: substrings of the id, `author`: the
    namespace, `filter`: tags the card declares)?"""
    if author and repo.split("/", 1)[0].lower() != author.lower():
        return False
    if any(s.lower() not in repo.lower() for s in search):
        return False
    declared_tags = (card or {}).get("tags")
    declared = {str(t) for t in declared_tags} if isinstance(declared_tags, list) else set()
    return all(t in declared for t in tags)

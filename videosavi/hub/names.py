"""Repository ids and tag names, checked before they reach git, a URL or a file path.

A repo id becomes a directory under the store and a path in Hub URLs, so anything that could climb
out of the store (`..`), be read as a git option (leading `-`) or mean something else in a URL is
refused here, once, with a message that says what is allowed.
"""

from __future__ import annotations

import re

from videosavi.errors import HubError

_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?"
_REPO_ID = re.compile(rf"^({_PART})/({_PART})$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def split_repo_id(repo: str) -> tuple[str, str]:
    """`org/name` -> (org, name), refusing ids that are not safe as both a path and a Hub id."""
    m = _REPO_ID.match(repo or "")
    if not m or ".." in repo or "--" in repo:
        raise HubError(
            f"invalid repository id {repo!r}: expected 'org/name' made of letters, digits, '-', '_' and '.' "
            "(no '..' or '--', not starting or ending with '.')"
        )
    return m.group(1), m.group(2)


def check_tag(tag: str) -> str:
    """A tag name git and the Hub both accept, never an option or a ref expression."""
    if not _TAG.match(tag or "") or ".." in tag or tag.endswith(".lock") or tag.endswith("."):
        raise HubError(f"invalid tag {tag!r}: use letters, digits, '.', '_' and '-' (e.g. iter3)")
    return tag


def iteration_tag(iteration: int) -> str:
    """The tag of iteration N, the only naming scheme users see."""
    return f"iter{iteration}"

"""What a publish must do, decided from the repository's state (pure; shared by both backends).

Keeping the rules in one function means the store and the Hub cannot drift apart on the questions
that matter to users: is a re-publish a no-op, is a changed tag refused, does `--overwrite` move it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from videosavi.errors import PublishError

BRANCH = "main"  # the branch every revision is committed on; tags name the iterations
_ITERATION_TAG = re.compile(r"^iter([1-9][0-9]*)$")


def iteration_of(tag: str) -> int | None:
    """N for a tag `iterN`, else None (custom tags take no part in the iteration order)."""
    m = _ITERATION_TAG.match(tag)
    return int(m.group(1)) if m else None


def newer_iteration_tag(tags: Iterable[str], tag: str) -> str | None:
    """The highest `iterM` tag with M above `tag`'s N, if any: main must keep pointing at it."""
    n = iteration_of(tag)
    if n is None:
        return None
    newer = [(m, t) for t in tags if (m := iteration_of(t)) is not None and m > n]
    return max(newer)[1] if newer else None


@dataclass(frozen=True)
class RepoState:
    """The tag's and main's commits, and whether each one's files equal the files to publish."""

    tag_commit: str | None
    tag_matches: bool
    head_commit: str | None
    head_matches: bool
    newer_tag: str | None = None  # a higher iteration already published (see `newer_iteration_tag`)


@dataclass(frozen=True)
class PublishPlan:
    action: Literal["noop", "tag_head", "commit_and_tag"]
    commit: str | None = None  # noop: the tag's commit; tag_head: main's head
    parent: str | None = None  # commit_and_tag: main's head (None for the first commit)
    move_tag_from: str | None = None  # set when --overwrite moves an existing tag
    move_main: bool = True  # False: a higher iteration is on main already; only the tag is written


def plan_publish(state: RepoState, *, repo: str, tag: str, force: bool) -> PublishPlan:
    """No-op for identical content; refuse changed content under an existing tag unless forced.

    When main's head already holds exactly these files (e.g. a re-run after the tag step failed),
    the head is tagged instead of making an empty commit. Main always points at the highest published
    iteration: a lower one published later (a gap filled, a forced re-publish) gets its commit and
    tag, and main stays where it is.
    """
    if state.tag_commit is not None and state.tag_matches:
        return PublishPlan("noop", commit=state.tag_commit)
    move_from = None
    if state.tag_commit is not None:
        if not force:
            raise PublishError(
                f"{repo}@{tag} already exists ({state.tag_commit[:12]}) with different content; "
                "publish under another tag, or pass --overwrite to move the tag to the new content"
            )
        move_from = state.tag_commit
    if state.head_commit is not None and state.head_matches:
        return PublishPlan("tag_head", commit=state.head_commit, move_tag_from=move_from)
    return PublishPlan("commit_and_tag", parent=state.head_commit, move_tag_from=move_from,
                       move_main=state.newer_tag is None)


@dataclass(frozen=True)
class PublishOutcome:
    """What a backend did: the commit the tag points at, and whether anything changed."""

    commit_sha: str
    noop: bool
    action: str


class PublishBackend(Protocol):
    """What publishing asks of a backend: `store.GitStore`, `hf_backend.HubBackend` (or a test's own)."""

    def location(self, repo: str) -> str:
        """Where the repository lives, for messages (a path or a URL)."""
        ...

    def tags(self, repo: str) -> set[str]: ...

    def fetch(self, repo: str, revision: str, dest: Path, patterns: list[str]) -> list[Path]:
        """The files of `revision` matching `patterns`, written under `dest`."""
        ...

    def publish(self, repo: str, tag: str, staging: Path, *, force: bool, message: str,
                tag_message: str) -> PublishOutcome:
        """The files under `staging` (exactly those) as one commit on main, tagged `tag`."""
        ...

"""Revision -> commit sha, decided from a repository's listed refs (pure; both backends use it).

Resolving by exact name against the refs a server lists, instead of handing the name to git or to
`datasets`, is what makes a missing revision an error: there is no fallback, no "closest" ref, and
no ref expression (`iter2~1`, `HEAD^`) that could silently pick something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from videosavi.errors import RevisionNotFoundError
from videosavi.hub.names import FULL_SHA


@dataclass(frozen=True)
class Refs:
    """Branch and tag names of one repository, each with the commit it points at (tags peeled)."""

    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        tags = ", ".join(sorted(self.tags)) or "none"
        branches = ", ".join(sorted(self.branches)) or "none"
        return f"tags: {tags}; branches: {branches}"


def pick_revision(refs: Refs, revision: str, *, repo: str, commit_exists: bool = False) -> str:
    """The commit sha `revision` names in `refs`, or `RevisionNotFoundError`.

    Accepts a tag or branch name, `refs/tags/X` / `refs/heads/X`, or a full 40-hex commit sha
    (`commit_exists` says whether the caller verified that sha in the repository; refs alone cannot
    tell). A name that is both a tag and a branch with different targets is refused rather than
    guessed.
    """
    if revision.startswith("refs/tags/") and revision[len("refs/tags/"):] in refs.tags:
        return refs.tags[revision[len("refs/tags/"):]]
    if revision.startswith("refs/heads/") and revision[len("refs/heads/"):] in refs.branches:
        return refs.branches[revision[len("refs/heads/"):]]
    tag, branch = refs.tags.get(revision), refs.branches.get(revision)
    if tag and branch and tag != branch:
        raise RevisionNotFoundError(
            f"{repo}: {revision!r} is both a tag and a branch pointing at different commits; "
            f"ask for refs/tags/{revision} or refs/heads/{revision}"
        )
    found = tag or branch
    if found:
        return found
    if FULL_SHA.match(revision) and (commit_exists or revision in refs.tags.values() or revision in
                                      refs.branches.values()):
        return revision
    raise RevisionNotFoundError(f"{repo} has no revision {revision!r} ({refs.describe()})")

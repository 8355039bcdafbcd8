"""The Hugging Face Hub backend, through `huggingface_hub.HfApi`.

One `create_commit` carries every file of the revision (and deletes files of main that the new
revision no longer has, so a stale shard can never match `data/train-*.parquet`), with
`parent_commit` set so a concurrent push makes it fail instead of interleaving. Then `create_tag`
tags the returned commit id.

The Hub cannot commit and tag in one transaction. The rules: a failed commit changes nothing; if the
tag step fails after the commit, the error names the untagged commit, and running the same publish
again tags that commit (main's head already holds exactly these files) without committing twice.

The token comes from huggingface_hub's own resolution (`HF_TOKEN`, or `hf auth login`) or the
`token` argument; this module never writes it anywhere and never puts it in a message.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from pathlib import Path
from typing import Any

from videosavi._faults import failpoint
from videosavi.errors import PublishError, RevisionNotFoundError
from videosavi.hub.fileset import StagedFile, scan
from videosavi.hub.names import check_tag, split_repo_id
from videosavi.hub.plan import BRANCH, PublishOutcome, RepoState, newer_iteration_tag, plan_publish
from videosavi.hub.refs import Refs, pick_revision

REPO_TYPE = "dataset"
# Files the Hub manages itself (created with the repository); never compared, never deleted.
HUB_MANAGED = frozenset({".gitattributes"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def refs_from_api(git_refs: Any) -> Refs:
    """`HfApi.list_repo_refs` result -> our `Refs` (the commits are already peeled by the server)."""
    return Refs(
        branches={r.name: r.target_commit for r in git_refs.branches},
        tags={r.name: r.target_commit for r in git_refs.tags},
    )


def tree_matches(entries: list[Any], files: list[StagedFile]) -> bool:
    """Does a Hub tree listing hold exactly `files`? LFS entries compare by sha256, others by blob id."""
    remote = {e.path: e for e in entries if hasattr(e, "blob_id") and e.path not in HUB_MANAGED}
    if set(remote) != {f.path for f in files}:
        return False
    for f in files:
        entry = remote[f.path]
        lfs = getattr(entry, "lfs", None)
        if lfs is not None:
            sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
            if sha != f.sha256:
                return False
        elif entry.blob_id != f.git_sha1:
            return False
    return True


class HubBackend:
    """Publishes to the Hub; `api` may be any object with HfApi's methods (tests inject a fake)."""

    kind = "hub"

    def __init__(self, *, api: Any = None, token: str | None = None, endpoint: str | None = None) -> None:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(endpoint=endpoint, token=token)
        self.api = api

    def location(self, repo: str) -> str:
        endpoint = str(getattr(self.api, "endpoint", "https://huggingface.co")).rstrip("/")
        return f"{endpoint}/datasets/{repo}"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # network, auth, HTTP: all end the publish with one clear line
            raise PublishError(f"{what} failed, nothing was changed: {_first_line(exc)}") from exc

    def refs(self, repo: str) -> Refs:
        return refs_from_api(self._call(f"listing the refs of {repo}", self.api.list_repo_refs, repo,
                                        repo_type=REPO_TYPE))

    def tags(self, repo: str) -> set[str]:
        """The repository's tag names; none when it does not exist yet."""
        try:
            refs = self.api.list_repo_refs(repo, repo_type=REPO_TYPE)
        except Exception as exc:
            if type(exc).__name__ == "RepositoryNotFoundError":
                return set()
            raise PublishError(f"listing the tags of {repo} failed, nothing was changed: {_first_line(exc)}") from exc
        return set(refs_from_api(refs).tags)

    def _tree(self, repo: str, commit: str | None) -> list[Any]:
        if commit is None:
            return []
        return list(self._call(f"listing the files of {repo}@{commit[:12]}", self.api.list_repo_tree, repo,
                               recursive=True, revision=commit, repo_type=REPO_TYPE))

    def publish(self, repo: str, tag: str, staging: Path, *, force: bool, message: str,
                tag_message: str) -> PublishOutcome:
        split_repo_id(repo)
        check_tag(tag)
        files = scan(Path(staging))
        self._call(f"creating the dataset repository {repo}", self.api.create_repo, repo, repo_type=REPO_TYPE,
                   exist_ok=True)
        refs = self.refs(repo)
        head, tag_commit = refs.branches.get(BRANCH), refs.tags.get(tag)
        head_tree = self._tree(repo, head)
        tag_tree = head_tree if tag_commit == head else self._tree(repo, tag_commit)
        state = RepoState(tag_commit=tag_commit, tag_matches=tag_commit is not None and tree_matches(tag_tree, files),
                          head_commit=head, head_matches=head is not None and tree_matches(head_tree, files),
                          newer_tag=newer_iteration_tag(refs.tags, tag))
        plan = plan_publish(state, repo=repo, tag=tag, force=force)
        if plan.action == "noop":
            return PublishOutcome(plan.commit or "", True, plan.action)
        # A lower iteration published after a higher one is committed on a short-lived side branch
        # (the Hub commits only onto a branch), tagged, and the branch removed: main stays put.
        side = None if plan.move_main else f"videosavi-publish-{tag}-{os.getpid()}"
        try:
            if plan.action == "commit_and_tag":
                commit = self._commit(repo, files, head, head_tree, message, side)
            else:
                commit = plan.commit or ""
            try:
                failpoint("publish_committed")
                if plan.move_tag_from:
                    self.api.delete_tag(repo, tag=tag, repo_type=REPO_TYPE)
                self.api.create_tag(repo, tag=tag, tag_message=tag_message, revision=commit, repo_type=REPO_TYPE)
            except Exception as exc:
                raise PublishError(
                    f"commit {commit} is on {repo}@{side or BRANCH} but tagging it {tag} failed ({_first_line(exc)}); "
                    "run the same publish again to tag it (it will not commit twice)"
                ) from exc
        finally:
            if side is not None:  # a leftover side branch would be harmless: readers use the tag
                with contextlib.suppress(Exception):
                    self.api.delete_branch(repo, branch=side, repo_type=REPO_TYPE)
        return PublishOutcome(commit, False, plan.action)

    def _commit(self, repo: str, files: list[StagedFile], head: str | None, head_tree: list[Any], message: str,
                side: str | None) -> str:
        """One commit holding exactly `files` (stale files of main deleted) on main, or on `side`."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        keep = {f.path for f in files}
        stale = sorted(e.path for e in head_tree
                       if hasattr(e, "blob_id") and e.path not in keep and e.path not in HUB_MANAGED)
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.local)) for f in files]
        operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
        if side is not None:
            self._call(f"creating the branch {side} of {repo}", self.api.create_branch, repo, branch=side,
                       revision=head, repo_type=REPO_TYPE)
        info = self._call(f"committing to {repo}", self.api.create_commit, repo, operations,
                          commit_message=message, repo_type=REPO_TYPE, revision=side or BRANCH, parent_commit=head)
        commit = str(getattr(info, "oid", "") or "")
        if not commit:
            raise PublishError(f"the Hub returned no commit id for {repo}; no tag was created")
        return commit

    def resolve(self, repo: str, revision: str) -> str:
        return pick_revision(self.refs(repo), revision, repo=repo)

    def fetch(self, repo: str, revision: str, dest: Path, patterns: list[str]) -> list[Path]:
        """Files of an earlier revision (for the card's comparison); [] when it does not exist."""
        try:
            refs = refs_from_api(self.api.list_repo_refs(repo, repo_type=REPO_TYPE))
            sha = pick_revision(refs, revision, repo=repo)
        except RevisionNotFoundError:
            return []
        except Exception as exc:
            if type(exc).__name__ in {"RepositoryNotFoundError", "RevisionNotFoundError", "RemoteEntryNotFoundError"}:
                return []
            raise PublishError(f"reading {repo}@{revision} for the comparison failed: {_first_line(exc)}") from exc
        names = self._call(f"listing {repo}@{revision}", self.api.list_repo_files, repo, revision=sha,
                           repo_type=REPO_TYPE)
        wanted = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        out = []
        for name in wanted:
            path = self._call(f"downloading {name} of {repo}@{revision}", self.api.hf_hub_download, repo, name,
                              repo_type=REPO_TYPE, revision=sha, local_dir=str(dest))
            out.append(Path(path))
        return out

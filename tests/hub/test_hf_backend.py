"""The Hub backend's call sequence and failure rules.

The Hugging Face Hub cannot be reached from here, so `HubBackend` gets a fake client: an in-memory
model of a Hub dataset repository (commits, branch, tags, LFS entries for binary files) with HfApi's
method names and signatures, recording every call. Everything else (validation, card, staging,
`CommitOperationAdd`/`Delete`, the real `RepoFile`/`GitRefs` types) is the real code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.hf_api import GitRefInfo, GitRefs, RepoFile, RepoFolder

from tests.helpers.factories import make_pairs, write_run_dir
from videosavi.errors import PublishError
from videosavi.hub.hf_backend import HubBackend
from videosavi.hub.publish import publish_run
from videosavi.progress import enable_progress_bars

REPO = "org/videosavi"
SENTINEL = "hf_SENTINEL_do_not_publish_4242"
LFS_SUFFIXES = (".parquet", ".png")


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Just enough of a Hub dataset repository, behind HfApi's method names."""

    endpoint = "https://hub.example"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.fail: dict[str, Exception] = {}
        self.exists = False

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail.pop(name)

    def _new_commit(self, files: dict[str, bytes], parent: str | None) -> str:
        sha = hashlib.sha1(repr((sorted(files.items()), parent)).encode()).hexdigest()
        self.commits[sha] = dict(files)
        return sha

    def create_repo(self, repo_id: str, *, repo_type: str, exist_ok: bool) -> None:
        self._record("create_repo", repo_id=repo_id, repo_type=repo_type, exist_ok=exist_ok)
        if not self.exists:
            self.exists = True
            self.branches["main"] = self._new_commit({".gitattributes": b"*.parquet filter=lfs\n"}, None)

    def list_repo_refs(self, repo_id: str, *, repo_type: str) -> GitRefs:
        self._record("list_repo_refs", repo_id=repo_id, repo_type=repo_type)
        return GitRefs(
            branches=[GitRefInfo(name=b, ref=f"refs/heads/{b}", target_commit=c) for b, c in self.branches.items()],
            converts=[],
            tags=[GitRefInfo(name=t, ref=f"refs/tags/{t}", target_commit=c) for t, c in self.tags.items()],
        )

    def list_repo_tree(self, repo_id: str, *, recursive: bool, revision: str, repo_type: str) -> list[Any]:
        self._record("list_repo_tree", repo_id=repo_id, revision=revision, recursive=recursive)
        entries: list[Any] = []
        folders = set()
        for path, data in self.commits[revision].items():
            if "/" in path:
                folders.add(path.rsplit("/", 1)[0])
            if path.endswith(LFS_SUFFIXES):
                pointer = f"oid sha256:{hashlib.sha256(data).hexdigest()}".encode()
                entries.append(RepoFile(path=path, size=len(data), oid=_git_blob(pointer),
                                        lfs={"size": len(data), "oid": hashlib.sha256(data).hexdigest(),
                                             "pointerSize": 130}))
            else:
                entries.append(RepoFile(path=path, size=len(data), oid=_git_blob(data)))
        entries += [RepoFolder(path=f, oid="0" * 40) for f in sorted(folders)]
        return entries

    def create_commit(self, repo_id: str, operations: list[Any], *, commit_message: str, repo_type: str,
                      revision: str, parent_commit: str | None) -> Any:
        self._record("create_commit", repo_id=repo_id, operations=operations, commit_message=commit_message,
                     revision=revision, parent_commit=parent_commit)
        if parent_commit != self.branches.get(revision):
            raise RuntimeError("412 Precondition Failed: the branch moved")
        files = dict(self.commits[parent_commit]) if parent_commit else {}
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                files[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
            elif isinstance(op, CommitOperationDelete):
                files.pop(op.path_in_repo)
        sha = self._new_commit(files, parent_commit)
        self.branches[revision] = sha
        return SimpleNamespace(oid=sha)

    def create_tag(self, repo_id: str, *, tag: str, tag_message: str, revision: str, repo_type: str) -> None:
        self._record("create_tag", repo_id=repo_id, tag=tag, revision=revision, tag_message=tag_message)
        if tag in self.tags:
            raise RuntimeError("409 Conflict: tag exists")
        self.tags[tag] = revision

    def create_branch(self, repo_id: str, *, branch: str, revision: str | None, repo_type: str) -> None:
        self._record("create_branch", repo_id=repo_id, branch=branch, revision=revision)
        if branch in self.branches:
            raise RuntimeError("409 Conflict: branch exists")
        self.branches[branch] = revision or self.branches["main"]

    def delete_branch(self, repo_id: str, *, branch: str, repo_type: str) -> None:
        self._record("delete_branch", repo_id=repo_id, branch=branch)
        del self.branches[branch]

    def delete_tag(self, repo_id: str, *, tag: str, repo_type: str) -> None:
        self._record("delete_tag", repo_id=repo_id, tag=tag)
        del self.tags[tag]

    def list_repo_files(self, repo_id: str, *, revision: str, repo_type: str) -> list[str]:
        self._record("list_repo_files", repo_id=repo_id, revision=revision)
        return sorted(self.commits[revision])

    def hf_hub_download(self, repo_id: str, filename: str, *, repo_type: str, revision: str, local_dir: str) -> str:
        self._record("hf_hub_download", repo_id=repo_id, filename=filename, revision=revision)
        dest = Path(local_dir) / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self.commits[revision][filename])
        return str(dest)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, Path]:
    r1 = write_run_dir(tmp_path / "iter1", make_pairs(n_videos=3, iteration=1, seed=1), iteration=1,
                       pairs_per_shard=10).path
    r2 = write_run_dir(tmp_path / "iter2", make_pairs(n_videos=2, iteration=2, seed=2), iteration=2).path
    return {"iter1": r1, "iter2": r2}


def publish(run: Path, hub: FakeHub, **kwargs: Any) -> Any:
    return publish_run(run, REPO, backend=HubBackend(api=hub), **kwargs)


def test_first_publish_is_one_commit_with_every_file_then_a_tag_on_its_id(runs: dict[str, Path]) -> None:
    hub = FakeHub()
    res = publish(runs["iter1"], hub)
    assert hub.names() == ["create_repo", "list_repo_refs", "list_repo_tree", "create_commit", "create_tag"]
    _, create_repo = hub.calls[0]
    assert create_repo["repo_type"] == "dataset" and create_repo["exist_ok"] is True
    _, commit = hub.calls[3]
    ops = commit["operations"]
    paths = {op.path_in_repo for op in ops if isinstance(op, CommitOperationAdd)}
    assert {"README.md", "build.json", "videos.parquet", "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet", "swift/train-00000-of-00002.parquet",
            "plots/error_types.png", "prompts/refine.txt", "quarantine_summary.json"} <= paths
    assert not any(p.startswith("trl/") for p in paths)  # the default config is TRL's form
    assert not any(isinstance(op, CommitOperationDelete) for op in ops)  # .gitattributes is the Hub's
    assert set(hub.commits[commit["parent_commit"]]) == {".gitattributes"}  # parent = the head it listed
    _, tag = hub.calls[4]
    assert tag["revision"] == res.commit_sha == hub.branches["main"] and tag["tag"] == "iter1"
    assert hub.tags == {"iter1": res.commit_sha}
    assert res.url_or_path == "https://hub.example/datasets/org/videosavi"


def test_republish_is_a_noop_changed_content_refused_and_force_moves_the_tag(runs: dict[str, Path],
                                                                             tmp_path: Path) -> None:
    hub = FakeHub()
    first = publish(runs["iter1"], hub)
    hub.calls.clear()
    again = publish(runs["iter1"], hub)
    assert again.noop and again.commit_sha == first.commit_sha
    assert "create_commit" not in hub.names() and "create_tag" not in hub.names()

    rebuilt = write_run_dir(tmp_path / "iter1b", make_pairs(n_videos=1, iteration=1, seed=5), iteration=1).path
    hub.calls.clear()
    with pytest.raises(PublishError, match="--overwrite"):
        publish(rebuilt, hub)
    assert "create_commit" not in hub.names() and hub.tags["iter1"] == first.commit_sha

    hub.calls.clear()
    forced = publish(rebuilt, hub, force=True)
    names = hub.names()
    assert names.index("create_commit") < names.index("delete_tag") < names.index("create_tag")
    assert hub.tags["iter1"] == forced.commit_sha != first.commit_sha
    # the old two-shard layout is deleted in the same commit, so data/train-*.parquet matches only new shards
    _, commit = next(c for c in hub.calls if c[0] == "create_commit")
    deleted = {op.path_in_repo for op in commit["operations"] if isinstance(op, CommitOperationDelete)}
    assert deleted == {f"{d}/train-0000{i}-of-00002.parquet" for d in ("data", "swift") for i in (0, 1)}
    assert sorted(p for p in hub.commits[forced.commit_sha] if p.startswith("data/")) == \
        ["data/train-00000-of-00001.parquet"]


def test_failed_commit_changes_nothing_and_never_tags(runs: dict[str, Path]) -> None:
    hub = FakeHub()
    hub.fail["create_commit"] = RuntimeError("503 Service Unavailable")
    with pytest.raises(PublishError, match="committing to org/videosavi failed, nothing was changed"):
        publish(runs["iter1"], hub)
    assert "create_tag" not in hub.names()
    assert hub.tags == {} and set(hub.commits[hub.branches["main"]]) == {".gitattributes"}


def test_failed_tag_names_the_commit_and_a_rerun_tags_it_without_a_second_commit(runs: dict[str, Path]) -> None:
    hub = FakeHub()
    hub.fail["create_tag"] = RuntimeError("500 Internal Server Error")
    with pytest.raises(PublishError, match="run the same publish again") as err:
        publish(runs["iter1"], hub)
    head = hub.branches["main"]
    assert head in str(err.value) and hub.tags == {}
    hub.calls.clear()
    res = publish(runs["iter1"], hub)
    assert "create_commit" not in hub.names()
    assert res.commit_sha == head and hub.tags == {"iter1": head} and not res.noop


def test_concurrent_push_makes_the_commit_fail(runs: dict[str, Path]) -> None:
    hub = FakeHub()
    real = hub.list_repo_tree

    def moving_branch(*args: Any, **kwargs: Any) -> list[Any]:
        out = real(*args, **kwargs)
        hub.branches["main"] = hub._new_commit({"other.txt": b"someone else"}, hub.branches["main"])
        return out

    hub.list_repo_tree = moving_branch  # type: ignore[method-assign]
    with pytest.raises(PublishError, match="Precondition Failed"):
        publish(runs["iter1"], hub)
    assert hub.tags == {}


def test_previous_iteration_is_read_from_the_same_repo_for_the_card(runs: dict[str, Path]) -> None:
    hub = FakeHub()
    publish(runs["iter1"], hub)
    hub.calls.clear()
    res = publish(runs["iter2"], hub)
    downloads = [kw["filename"] for name, kw in hub.calls if name == "hf_hub_download"]
    assert downloads == ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    readme = hub.commits[res.commit_sha]["README.md"].decode()
    assert "## Change against `iter1`" in readme and "| iter1 all |" in readme


def test_token_is_passed_to_hfapi_and_never_published_or_printed(runs: dict[str, Path],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    backend = HubBackend(token=SENTINEL)
    assert backend.api.token == SENTINEL  # a real HfApi, holding the token for its requests only
    hub = FakeHub()
    hub.fail["create_tag"] = RuntimeError("401 Unauthorized")
    enable_progress_bars()  # the spinners print too, and must not show the token either
    with pytest.raises(PublishError) as err:
        publish_run(runs["iter1"], REPO, backend=HubBackend(api=hub), token=SENTINEL)
    assert SENTINEL not in str(err.value)
    publish_run(runs["iter1"], REPO, backend=HubBackend(api=hub), token=SENTINEL)
    for files in hub.commits.values():
        for path, data in files.items():
            assert SENTINEL.encode() not in data, path
    for _, kwargs in hub.calls:
        assert SENTINEL not in repr({k: v for k, v in kwargs.items() if k != "operations"})
    captured = capsys.readouterr()
    assert SENTINEL not in captured.out + captured.err + caplog.text


def test_gaps_are_refused_and_main_stays_on_the_highest_iteration(runs: dict[str, Path], tmp_path: Path) -> None:
    hub = FakeHub()
    r3 = write_run_dir(tmp_path / "iter3", make_pairs(n_videos=2, iteration=3, seed=3), iteration=3).path
    publish(runs["iter1"], hub)
    with pytest.raises(PublishError, match="no iter2"):
        publish(r3, hub)
    p3 = publish(r3, hub, allow_gap=True)
    hub.calls.clear()
    p2 = publish(runs["iter2"], hub)
    # the Hub commits only onto a branch: a side branch carries iter2's commit, is tagged, then removed
    assert [n for n in hub.names() if "branch" in n or n in ("create_commit", "create_tag")] == [
        "create_branch", "create_commit", "create_tag", "delete_branch"]
    assert hub.branches == {"main": p3.commit_sha}
    assert hub.tags["iter2"] == p2.commit_sha != p3.commit_sha
    assert {p for p in hub.commits[p2.commit_sha] if p.startswith("data/")} == {"data/train-00000-of-00001.parquet"}

"""`savi hub serve` answers every read-only HfApi call a dataset user makes the way the Hub does,
straight from the git store (no olah): each method below is called through huggingface_hub 2.x's own
client and checked against what git says. The store holds the refs that broke the old server: an
annotated tag per iteration, a lightweight tag, a second branch, a repository with no tag at all and
one with no commit; and the requests a client should never be able to break it with (`..`, NULs, odd
bytes, unknown routes, a whoami without users)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from typer.testing import CliRunner

from tests.helpers.factories import make_pairs, write_run_dir
from videosavi.cli import app
from videosavi.hub.load import load_revision, resolve_revision
from videosavi.hub.publish import publish_run
from videosavi.hub.serve import HubServer
from videosavi.hub.store import GitStore

REPO = "org/videosavi"
TAGLESS = "org/tagless"  # one commit on main, no tag at all
EMPTY = "org/empty"  # a bare repository without a commit
ROOT = Path(__file__).resolve().parents[2]


def _git(bare: Path, *args: str, stdin: bytes | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", f"--git-dir={bare}", *args], input=stdin, capture_output=True, check=True,
                          env=env).stdout.decode().strip()


def _commit_files(bare: Path, files: dict[str, bytes], message: str, parent: str | None = None) -> str:
    """A commit holding `files` (flat names), made with git's plumbing the way a third-party tool would."""
    entries = b"".join(b"100644 blob " + _git(bare, "hash-object", "-w", "--stdin", stdin=data).encode() + b"\t"
                       + name.encode() + b"\n" for name, data in sorted(files.items()))
    tree = _git(bare, "mktree", stdin=entries)
    return _git(bare, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("hub-api")
    root = base / "store"
    for it in (1, 2):
        run = write_run_dir(base / f"iter{it}", make_pairs(n_videos=2, iteration=it, seed=it), iteration=it).path
        publish_run(run, REPO, store=root)
    git_store = GitStore(root)
    bare = git_store.repo_dir(REPO)
    iter1, iter2 = git_store.resolve(REPO, "iter1"), git_store.resolve(REPO, "iter2")
    _git(bare, "tag", "stable", f"{iter2}^{{commit}}")  # lightweight: what `git tag stable iter2` makes
    _git(bare, "branch", "dev", iter1)
    tag_object = _git(bare, "rev-parse", "refs/tags/iter1")  # the annotated tag object, not its commit
    assert tag_object != iter1
    tagless = git_store.create(TAGLESS)
    first = _commit_files(tagless, {"README.md": b"# tagless\n", "a.txt": b"one\n"}, "first")
    second = _commit_files(tagless, {"README.md": b"# tagless\n", "a.txt": b"two\n"}, "second\n\nbody line", first)
    _git(tagless, "update-ref", "refs/heads/main", second)
    git_store.create(EMPTY)
    return {"root": root, "iter1": iter1, "iter2": iter2, "tag_object": tag_object, "tagless": [second, first]}


@pytest.fixture(scope="module")
def server(store: dict[str, Any]) -> Iterator[HubServer]:
    with HubServer(store["root"], port=0) as srv:
        yield srv


@pytest.fixture()
def api(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # conftest switches it on
    return HfApi(endpoint=server.endpoint, token=False)


def _http(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def _git_files(store: dict[str, Any], repo: str, sha: str) -> dict[str, tuple[int, str]]:
    """path -> (size, blob id), as git lists them."""
    out = _git(GitStore(store["root"]).repo_dir(repo), "ls-tree", "-r", "-l", sha)
    files = {}
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        _mode, _type, oid, size = meta.split()
        files[path] = (int(size), oid)
    return files


# --- every HfApi read method a dataset user calls ---------------------------------------------------


def check_whoami(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        api.whoami(token="hf_anything")
    assert err.value.response.status_code == 401
    assert "error" in err.value.response.json()


def check_list_datasets(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    listed = {d.id: d for d in api.list_datasets()}
    assert set(listed) == {REPO, TAGLESS, EMPTY}
    assert listed[REPO].sha == store["iter2"] and listed[REPO].author == "org"
    assert listed[EMPTY].sha is None
    assert [d.id for d in api.list_datasets(search="tagl")] == [TAGLESS]
    assert [d.id for d in api.list_datasets(author="nobody")] == []
    assert len(list(api.list_datasets(limit=1))) == 1
    (full,) = api.list_datasets(search="videosavi", full=True)
    assert full.card_data is not None and {s.rfilename for s in full.siblings or []} >= {"README.md", "build.json"}


def check_dataset_info(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    info = api.dataset_info(REPO, revision="iter1", files_metadata=True)
    assert info.sha == store["iter1"] and info.card_data is not None
    git = _git_files(store, REPO, store["iter1"])
    assert {s.rfilename: (s.size, s.blob_id) for s in info.siblings or []} == git
    assert all(s.lfs is None for s in info.siblings or [])  # the store keeps plain blobs, never LFS pointers
    assert api.dataset_info(REPO).sha == store["iter2"]  # main
    plain = api.dataset_info(REPO, revision="iter1")
    assert all(s.size is None and s.blob_id is None for s in plain.siblings or [])  # only when asked, as the Hub
    only = api.dataset_info(REPO, revision="iter1", expand=["sha", "lastModified"])
    assert only.sha == store["iter1"] and only.last_modified is not None and only.siblings is None


def check_repo_info(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    assert api.repo_info(REPO, repo_type="dataset", revision="stable").sha == store["iter2"]
    assert api.repo_info(TAGLESS, repo_type="dataset").sha == store["tagless"][0]
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("org/missing", repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info(REPO)  # a model: the store holds datasets only


def check_repo_exists(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    assert api.repo_exists(REPO, repo_type="dataset") and api.repo_exists(TAGLESS, repo_type="dataset")
    assert not api.repo_exists("org/missing", repo_type="dataset")


def check_revision_exists(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    for rev in ("iter1", "iter2", "stable", "dev", "main", "refs/tags/stable", store["iter1"]):
        assert api.revision_exists(REPO, rev, repo_type="dataset"), rev
    for rev in ("iter9", "iter2~1", "HEAD", store["tag_object"]):
        assert not api.revision_exists(REPO, rev, repo_type="dataset"), rev


def check_file_exists(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    assert api.file_exists(REPO, "build.json", repo_type="dataset", revision="iter1")
    assert not api.file_exists(REPO, "nope.txt", repo_type="dataset", revision="iter1")
    assert not api.file_exists(REPO, "data/%2e%2e/x", repo_type="dataset", revision="iter1")


def check_resolve_revision(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    got = api.resolve_revision(REPO, repo_type="dataset", revision="iter1", cache_dir=tmp / "cache")
    assert got.resolved == store["iter1"]  # the commit, never the annotated tag's object
    with pytest.raises(RevisionNotFoundError):
        api.resolve_revision(REPO, repo_type="dataset", revision="iter9", cache_dir=tmp / "cache")


def check_list_repo_files(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    assert sorted(api.list_repo_files(REPO, repo_type="dataset", revision="iter2")) == sorted(
        _git_files(store, REPO, store["iter2"]))
    assert sorted(api.list_repo_files(TAGLESS, repo_type="dataset")) == ["README.md", "a.txt"]


def check_list_repo_tree(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    top = {e.path: type(e).__name__ for e in api.list_repo_tree(REPO, repo_type="dataset", revision="iter1")}
    assert top["README.md"] == "RepoFile" and top["data"] == "RepoFolder"
    deep = list(api.list_repo_tree(REPO, repo_type="dataset", revision="iter1", recursive=True, expand=True))
    files = {e.path: (e.size, e.blob_id) for e in deep if type(e).__name__ == "RepoFile"}
    assert files == _git_files(store, REPO, store["iter1"])
    assert all(e.last_commit is not None and e.last_commit.oid == store["iter1"] for e in deep)
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(REPO, path_in_repo="no-such-folder", repo_type="dataset", revision="iter1"))


def check_get_paths_info(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    got = api.get_paths_info(REPO, ["build.json", "data", "missing.txt", "../x"], repo_type="dataset",
                             revision="iter1")
    assert sorted(type(e).__name__ + ":" + e.path for e in got) == ["RepoFile:build.json", "RepoFolder:data"]


def check_list_repo_refs(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    refs = api.list_repo_refs(REPO, repo_type="dataset", include_pull_requests=True)
    assert {t.name: t.target_commit for t in refs.tags} == {"iter1": store["iter1"], "iter2": store["iter2"],
                                                            "stable": store["iter2"]}
    assert {b.name: b.target_commit for b in refs.branches} == {"main": store["iter2"], "dev": store["iter1"]}
    assert refs.converts == [] and refs.pull_requests == []
    tagless = api.list_repo_refs(TAGLESS, repo_type="dataset")
    assert tagless.tags == [] and [b.name for b in tagless.branches] == ["main"]
    assert api.list_repo_refs(EMPTY, repo_type="dataset").branches == []


def check_list_repo_commits(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    commits = api.list_repo_commits(REPO, repo_type="dataset", revision="iter2")
    assert [c.commit_id for c in commits] == [store["iter2"], store["iter1"]]
    assert all(c.authors and c.title and c.created_at for c in commits)
    tagless = api.list_repo_commits(TAGLESS, repo_type="dataset", formatted=True)
    assert [(c.commit_id, c.title, c.message) for c in tagless] == [
        (store["tagless"][0], "second", "body line"), (store["tagless"][1], "first", "")]
    assert tagless[0].formatted_title == "second"
    # the Hub pages commits with a Link header; huggingface_hub follows it
    status, headers, body = _http(f"{api.endpoint}/api/datasets/{TAGLESS}/commits/main?limit=1")
    assert status == 200 and len(json.loads(body)) == 1 and 'rel="next"' in headers["link"]


def check_get_hf_file_metadata(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    url = huggingface_hub.hf_hub_url(REPO, "build.json", repo_type="dataset", revision="iter1", endpoint=api.endpoint)
    meta = api.get_hf_file_metadata(url=url)
    size, oid = _git_files(store, REPO, store["iter1"])["build.json"]
    assert (meta.commit_hash, meta.etag, meta.size) == (store["iter1"], oid, size)


def check_hf_hub_download(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    path = Path(api.hf_hub_download(REPO, "build.json", repo_type="dataset", revision="stable",
                                    cache_dir=tmp / "dl"))
    assert path.read_bytes() == GitStore(store["root"]).read_file(REPO, store["iter2"], "build.json")
    assert path.parent.name == store["iter2"]  # cached under the commit
    via_tag = Path(hf_hub_download(REPO, "build.json", repo_type="dataset", revision="iter1", cache_dir=tmp / "dl",
                                   endpoint=api.endpoint))
    assert via_tag.parent.name == store["iter1"]  # an annotated tag is cached under its commit, not its object


def check_snapshot_download(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    folder = Path(snapshot_download(TAGLESS, repo_type="dataset", cache_dir=tmp / "snap", endpoint=api.endpoint))
    assert folder.name == store["tagless"][0] and (folder / "a.txt").read_bytes() == b"two\n"
    folder = Path(api.snapshot_download(REPO, repo_type="dataset", revision="iter1", cache_dir=tmp / "snap"))
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        _git_files(store, REPO, store["iter1"]))


def check_verify_repo_checksums(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    local = tmp / "local"
    api.snapshot_download(REPO, repo_type="dataset", revision="iter1", local_dir=local)
    result = api.verify_repo_checksums(REPO, repo_type="dataset", revision="iter1", local_dir=local)
    assert not result.mismatches and not result.missing_paths and result.checked_count > 3
    (local / "build.json").write_text("{}")
    assert api.verify_repo_checksums(REPO, repo_type="dataset", revision="iter1", local_dir=local).mismatches


def check_auth_check(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    api.auth_check(REPO, repo_type="dataset")  # read access: no error
    with pytest.raises(HfHubHTTPError):
        api.auth_check(REPO, repo_type="dataset", write=True)
    with pytest.raises(RepositoryNotFoundError):
        api.auth_check("org/missing", repo_type="dataset")


def check_hf_file_system(api: HfApi, store: dict[str, Any], tmp: Path) -> None:
    fs = HfFileSystem(endpoint=api.endpoint, token=False, skip_instance_cache=True)
    base = f"datasets/{REPO}@iter1"
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(base, detail=False)}
    assert {"README.md", "build.json", "data"} <= names
    size, _oid = _git_files(store, REPO, store["iter1"])["build.json"]
    assert fs.info(f"{base}/build.json")["size"] == size
    with fs.open(f"{base}/build.json", "rb", block_size=16) as fh:
        fh.seek(5)
        assert fh.read(10) == GitStore(store["root"]).read_file(REPO, store["iter1"], "build.json")[5:15]
    assert fs.glob(f"{base}/data/*.parquet")


# Every HfApi (and HfFileSystem) call a dataset reader makes against an endpoint, each checked above.
# Not here: list_dataset_parquet_files (it asks the datasets-server, not HF_ENDPOINT) and the write,
# account, Space, Inference, Job and Collection methods (a local store has none of them).
HFAPI_READ_METHODS: dict[str, Callable[[HfApi, dict[str, Any], Path], None]] = {
    "whoami": check_whoami,
    "list_datasets": check_list_datasets,
    "dataset_info": check_dataset_info,
    "repo_info": check_repo_info,
    "repo_exists": check_repo_exists,
    "revision_exists": check_revision_exists,
    "file_exists": check_file_exists,
    "resolve_revision": check_resolve_revision,
    "list_repo_files": check_list_repo_files,
    "list_repo_tree": check_list_repo_tree,
    "get_paths_info": check_get_paths_info,
    "list_repo_refs": check_list_repo_refs,
    "list_repo_commits": check_list_repo_commits,
    "get_hf_file_metadata": check_get_hf_file_metadata,
    "hf_hub_download": check_hf_hub_download,
    "snapshot_download": check_snapshot_download,
    "verify_repo_checksums": check_verify_repo_checksums,
    "auth_check": check_auth_check,
    "HfFileSystem": check_hf_file_system,
}


@pytest.mark.parametrize("method", sorted(HFAPI_READ_METHODS))
def test_every_hfapi_read_method_answers_as_the_hub(method: str, api: HfApi, store: dict[str, Any],
                                                   tmp_path: Path) -> None:
    assert method == "HfFileSystem" or callable(getattr(HfApi, method))
    HFAPI_READ_METHODS[method](api, store, tmp_path)


# --- refs: lightweight and annotated tags, branches, tagless and empty repositories -------------------


def test_the_store_reads_every_kind_of_ref(store: dict[str, Any]) -> None:
    git_store = GitStore(store["root"])
    refs = git_store.refs(REPO)
    assert refs.tags == {"iter1": store["iter1"], "iter2": store["iter2"], "stable": store["iter2"]}
    assert refs.branches == {"main": store["iter2"], "dev": store["iter1"]}
    assert git_store.refs(TAGLESS).tags == {} and git_store.refs(TAGLESS).branches == {"main": store["tagless"][0]}
    assert git_store.refs(EMPTY).tags == {} == git_store.refs(EMPTY).branches
    assert git_store.resolve(REPO, "stable") == store["iter2"]
    assert not git_store.commit_exists(REPO, store["tag_object"])  # a tag object is not a commit


def test_a_tag_of_a_tag_and_a_tag_of_a_tree_are_read_right(tmp_path: Path) -> None:
    git_store = GitStore(tmp_path / "store")
    bare = git_store.create("org/deep")
    commit = _commit_files(bare, {"x.txt": b"x"}, "one")
    _git(bare, "update-ref", "refs/heads/main", commit)
    _git(bare, "tag", "-a", "-m", "a", "inner", commit)
    _git(bare, "tag", "-a", "-m", "b", "outer", "inner")  # an annotated tag of an annotated tag
    _git(bare, "tag", "tree-tag", f"{commit}^{{tree}}")  # names no commit: not a revision
    assert git_store.refs("org/deep").tags == {"inner": commit, "outer": commit}


def test_lightweight_tag_serves_to_stock_datasets_resolve_and_load_revision(server: HubServer, store: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    """`git tag stable iter2` in a store breaks nothing: CLI, store reads, load_revision, stock load_dataset."""
    result = CliRunner().invoke(app, ["hub", "resolve", "-d", REPO, "-r", "stable", "--store", str(store["root"])])
    assert result.exit_code == 0 and result.output.strip().endswith(store["iter2"]), result.output
    ds = load_revision(REPO, "stable", store=store["root"], cache_dir=tmp_path / "c1")
    assert set(ds["iteration"]) == {2}
    assert resolve_revision(TAGLESS, "main", store=store["root"]) == store["tagless"][0]
    script = ("import datasets, sys; ds = datasets.load_dataset(sys.argv[1], revision=sys.argv[2], split='train'); "
              "print(sorted(set(ds['iteration'])))")
    env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for var in ("HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-c", script, REPO, "stable"], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[2]"


def test_an_annotated_tag_is_served_as_its_commit(server: HubServer, store: dict[str, Any]) -> None:
    url = f"{server.endpoint}/datasets/{REPO}/resolve/iter1/build.json"
    status, headers, _ = _http(url, method="HEAD")
    assert (status, headers["x-repo-commit"]) == (200, store["iter1"])
    status, headers, _ = _http(f"{server.endpoint}/datasets/{REPO}/resolve/{store['tag_object']}/build.json")
    assert (status, headers["x-error-code"]) == (404, "RevisionNotFound")
    status, _, body = _http(f"{server.endpoint}/api/datasets/{REPO}/revision/iter1")
    assert json.loads(body)["sha"] == store["iter1"]


# --- requests that must not break the server ------------------------------------------------------------


@pytest.mark.parametrize("path", [
    f"/datasets/{REPO}/resolve/iter1/build%00.json",
    f"/datasets/{REPO}/resolve/iter1/%00",
    f"/datasets/{REPO}/resolve/iter1/data/%2e%2e/build.json",
    f"/datasets/{REPO}/resolve/iter1/..%2fbuild.json",
    f"/datasets/{REPO}/resolve/iter1/%ff%fe",
    f"/datasets/{REPO}/resolve/iter1/a%0d%0aSet-Cookie:%20x",
    f"/api/datasets/{REPO}/tree/iter1/%00",
    f"/api/datasets/{REPO}/tree/iter1/..",
])
def test_odd_bytes_and_dot_dot_in_paths_are_404_entry_not_found(server: HubServer, store: dict[str, Any],
                                                                path: str) -> None:
    status, headers, body = _http(server.endpoint + path)
    assert (status, headers["x-error-code"], headers["x-repo-commit"]) == (404, "EntryNotFound", store["iter1"])
    assert "set-cookie" not in headers and "\x00" not in headers["x-error-message"]
    assert json.loads(body)["error"].startswith("Entry not found")


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/datasets/org%00x/videosavi", 404, "RepoNotFound"),
    ("/api/datasets/../../etc/passwd", 404, "RepoNotFound"),
    ("/api/datasets/org/..", 404, "RepoNotFound"),
    (f"/api/datasets/{REPO}/revision/iter1%00", 404, "RevisionNotFound"),
    (f"/datasets/{REPO}/resolve/%00/build.json", 404, "RevisionNotFound"),
    ("/api/models/org/videosavi", 404, "RepoNotFound"),
    ("/api/datasets/squad", 404, "RepoNotFound"),
    (f"/api/datasets/{REPO}/discussions", 404, None),
    (f"/api/datasets/{REPO}/preupload/main", 404, None),
    ("/api/datasets-tags-by-type", 404, None),
    ("/api/spaces/x/y/runtime", 404, "RepoNotFound"),
    ("/no/such/route", 404, None),
    ("/%00", 404, None),
    ("/api/whoami-v2", 401, None),
])
def test_unknown_routes_and_names_get_the_hubs_error_shape(server: HubServer, path: str, status: int,
                                                           code: str | None) -> None:
    got, headers, body = _http(server.endpoint + path)
    assert got == status, path
    assert headers.get("x-error-code") == code
    assert isinstance(json.loads(body)["error"], str) and headers["x-error-message"].isprintable()


def test_hub_serve_says_what_is_wrong_with_the_store(tmp_path: Path) -> None:
    a_file = tmp_path / "store.txt"
    a_file.write_text("not a store")
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    for given, words in ((a_file, "is a file, not a store folder"), (empty, "holds no datasets/ folder"),
                         (tmp_path / "missing", "does not exist")):
        result = CliRunner().invoke(app, ["hub", "serve", "--store", str(given), "--port", "1"])
        assert result.exit_code == 2, result.output
        assert words in result.output and str(given) in result.output
        assert "Traceback" not in result.output
    assert a_file.read_text() == "not a store" and not any(empty.iterdir())

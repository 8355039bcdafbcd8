"""`savi hub serve` over a published store: stock `datasets.load_dataset(repo, revision=tag)` reads each
iteration and raises for a missing one (never a cached other revision), byte ranges serve streaming and
`hf://` readers, any file (a 130-byte binary, an empty file, a multi-MB shard) and an empty revision
serve, nothing can be written, and the server starts and stops cleanly."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.errors import RevisionNotFoundError as HubRevisionNotFoundError

from tests.helpers.factories import make_pairs, write_run_dir
from videosavi.errors import HubError, RevisionNotFoundError
from videosavi.hub.load import load_revision, resolve_revision
from videosavi.hub.publish import publish_run
from videosavi.hub.serve import HubServer, free_port
from videosavi.hub.store import GitStore
from videosavi.schemas import PreferencePair

REPO = "org/videosavi"
BIG = "org/videosavi-big"  # one ~6 MB shard: larger than any single read a client makes
ODD = "org/odd-files"  # files no run writes: a 130-byte binary, an empty file; and an empty revision
TINY_BINARY = random.Random(130).randbytes(130)
SENTINEL = "hf_SENTINEL_do_not_publish_4242"
ROOT = Path(__file__).resolve().parents[2]

_LOAD_SCRIPT = """
import json, sys
import datasets
repo, rev = sys.argv[1], sys.argv[2]
default = datasets.load_dataset(repo, revision=rev, split="train")
swift = datasets.load_dataset(repo, "swift", revision=rev, split="train")
print(json.dumps({"pair_ids": list(default["pair_id"]), "iterations": sorted(set(default["iteration"])),
                  "chosen": list(default["chosen_text"]), "questions": list(default["question"]),
                  "swift_columns": swift.column_names, "swift": swift.to_list()}))
"""


def _bulky(pairs: list[PreferencePair], payload_bytes: int, seed: int) -> list[PreferencePair]:
    """The same pairs with a hard-to-compress critique of about `payload_bytes`, for big shards."""
    rng = random.Random(seed)
    return [p.model_copy(update={"critique": base64.b64encode(rng.randbytes(payload_bytes)).decode()})
            for p in pairs]


def _publish_files(store: Path, repo: str, tag: str, files: dict[str, bytes], staging: Path) -> str:
    """A revision holding exactly `files` (publish_run only writes runs; the store takes any file set)."""
    staging.mkdir(parents=True)
    for name, data in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    return GitStore(store).publish(repo, tag, staging, force=False, message=tag, tag_message=tag).commit_sha


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("hub")
    store = base / "store"
    expected = {}
    for it, n_videos in ((1, 3), (2, 4)):
        run = write_run_dir(base / f"iter{it}", make_pairs(n_videos=n_videos, iteration=it, seed=it), iteration=it,
                            pairs_per_shard=10).path
        publish_run(run, REPO, store=store)
        expected[f"iter{it}"] = pq.read_table(run / "data").column("pair_id").to_pylist()
    big = write_run_dir(base / "big", _bulky(make_pairs(n_videos=34, seed=5), 30_000, seed=5)).path
    sha = publish_run(big, BIG, store=store).commit_sha
    (built,) = sorted((big / "data").glob("*.parquet"))
    shard = base / "published" / "data" / built.name  # the bytes the store serves (the default config's layout)
    shard.parent.mkdir(parents=True)
    shard.write_bytes(GitStore(store).read_file(BIG, sha, f"data/{built.name}") or b"")
    expected["big"] = pq.read_table(shard).column("pair_id").to_pylist()
    odd = {"tiny.bin": TINY_BINARY, "empty.txt": b"", "README.md": b"# odd files\n"}
    _publish_files(store, ODD, "files", odd, base / "odd-files")
    _publish_files(store, ODD, "empty", {}, base / "odd-empty")
    return {"base": base, "store": store, "expected": expected, "big_shard": shard}


@pytest.fixture(scope="module")
def server(published: dict[str, object]) -> Iterator[HubServer]:
    base = published["base"]
    assert isinstance(base, Path)
    with HubServer(published["store"], port=0, log_path=base / "access.log") as srv:
        yield srv


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest switches huggingface_hub offline; these tests talk to a loopback server."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def _plain_load(server: HubServer, revision: str, hf_home: Path) -> dict:
    env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0",
           "HF_TOKEN": SENTINEL, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_DATASETS_CACHE", None)
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, REPO, revision], env=env, capture_output=True,
                          text=True, cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stock_load_dataset_reads_each_iteration_and_every_config(server: HubServer, published: dict,
                                                                  tmp_path: Path) -> None:
    for rev in ("iter1", "iter2"):
        got = _plain_load(server, rev, tmp_path / f"hf-{rev}")  # a fresh HF_HOME for each
        assert got["pair_ids"] == published["expected"][rev]
        assert got["iterations"] == [int(rev[-1])]
        # the swift config: ms-swift's DPO fields, the same pairs in the same order, chosen answer last
        assert got["swift_columns"] == ["messages", "rejected_response", "videos"]
        assert len(got["swift"]) == len(got["pair_ids"])
        for row, chosen, question in zip(got["swift"], got["chosen"], got["questions"], strict=True):
            assert row["messages"][-1] == {"role": "assistant", "content": chosen}
            assert row["messages"][0] == {"role": "user", "content": "<video>" + question}
            assert len(row["videos"]) == 1 and not row["videos"][0].startswith("/")


def test_load_revision_through_the_server(server: HubServer, published: dict, tmp_path: Path, online: None) -> None:
    for rev in ("iter1", "iter2", "refs/tags/iter1"):
        ds = load_revision(REPO, rev, endpoint=server.endpoint, cache_dir=tmp_path / "cache")
        assert list(ds["pair_id"]) == published["expected"][rev.rsplit("/", 1)[-1]]
    sha = resolve_revision(REPO, "iter1", endpoint=server.endpoint)
    assert resolve_revision(REPO, sha, endpoint=server.endpoint) == sha
    swift = load_revision(REPO, "iter2", endpoint=server.endpoint, config_name="swift", cache_dir=tmp_path / "cache")
    assert swift.column_names == ["messages", "rejected_response", "videos"]


def test_missing_revisions_raise_and_never_fall_back_to_a_cached_one(server: HubServer, tmp_path: Path,
                                                                     online: None) -> None:
    cache = tmp_path / "cache"
    load_revision(REPO, "iter2", endpoint=server.endpoint, cache_dir=cache)  # something is cached now
    for bad in ("iter9", "iter2~1", "f" * 40):
        with pytest.raises(RevisionNotFoundError, match="no revision"):
            load_revision(REPO, bad, endpoint=server.endpoint, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError, match="no dataset repository"):
        load_revision("org/missing", "iter1", endpoint=server.endpoint, cache_dir=cache)
    # the server is still healthy after those probes
    assert resolve_revision(REPO, "iter2", endpoint=server.endpoint)


def test_offline_mode_gives_a_clear_error(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        resolve_revision(REPO, "iter1", endpoint=server.endpoint)


def test_server_log_holds_no_token(server: HubServer, published: dict, tmp_path: Path) -> None:
    _plain_load(server, "iter1", tmp_path / "hf")  # sends HF_TOKEN as a bearer token to the server
    base = published["base"]
    log = (base / "access.log").read_text(errors="replace")
    assert f"GET /datasets/{REPO}/resolve/" in log  # the requests were logged, the token was not
    assert SENTINEL not in log


def test_server_stops_and_the_cli_prints_the_endpoint(published: dict, tmp_path: Path) -> None:
    with HubServer(published["store"]) as srv:
        endpoint = srv.endpoint
        urllib.request.urlopen(f"{endpoint}/api/datasets/{REPO}/refs", timeout=10).close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{endpoint}/api/datasets/{REPO}/refs", timeout=5)

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "videosavi", "hub", "serve", "--store", str(published["store"]),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"export HF_ENDPOINT=http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/datasets/{REPO}/refs", timeout=10) as resp:
            assert {t["name"] for t in json.load(resp)["tags"]} == {"iter1", "iter2"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/datasets/{REPO}/refs", timeout=2).close()
        except urllib.error.URLError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the server still answers after `savi hub serve` was stopped")


def test_busy_port_is_a_clear_error(published: dict) -> None:
    with HubServer(published["store"]) as srv, pytest.raises(HubError, match="already in use"):
        HubServer(published["store"], port=srv.port).start()


# --- the Hub's answers: errors, ranges, files, read-only ------------------------------------------

_STOCK_SCRIPT = """
import json, sys, time
import datasets
import pandas as pd
mode, repo = sys.argv[1], sys.argv[2]
if mode == "fallback":
    first = datasets.load_dataset(repo, revision="iter1", split="train")
    try:
        datasets.load_dataset(repo, revision="iter9", split="train")
        print(json.dumps({"first": first.num_rows, "raised": None}))
    except Exception as exc:
        chain, e = [], exc
        while e is not None:
            chain.append(type(e).__name__)
            e = e.__cause__ or e.__context__
        print(json.dumps({"first": first.num_rows, "raised": chain, "message": str(exc)}))
else:
    t0 = time.perf_counter()
    streamed = [row["pair_id"] for row in datasets.load_dataset(repo, revision="iter1", split="train", streaming=True)]
    t1 = time.perf_counter()
    frame = pd.read_parquet(f"hf://datasets/{repo}@iter1/" + sys.argv[3], columns=["pair_id", "critique"])
    t2 = time.perf_counter()
    print(json.dumps({"streamed": streamed, "pandas": frame["pair_id"].tolist(),
                      "critique_chars": int(frame["critique"].str.len().sum()),
                      "stream_s": t1 - t0, "pandas_s": t2 - t1}))
"""


def _stock(server: HubServer, hf_home: Path, *args: str) -> dict:
    """Run stock datasets/pandas in a fresh interpreter with HF_ENDPOINT pointing at the server."""
    env = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for var in ("HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-c", _STOCK_SCRIPT, *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _http(url: str, method: str = "GET", headers: dict[str, str] | None = None,
          data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_stock_load_dataset_raises_for_an_unknown_revision_after_caching_another(server: HubServer,
                                                                                 tmp_path: Path) -> None:
    got = _stock(server, tmp_path / "hf", "fallback", REPO)  # one HF cache for both calls
    assert got["first"] == 18
    assert got["raised"] is not None, "datasets returned a cached revision for iter9"
    assert got["raised"][0] == "DatasetNotFoundError" and "RevisionNotFoundError" in got["raised"]
    assert "iter9" in got["message"]


def test_unknown_revisions_repositories_and_files_get_the_hubs_typed_404s(server: HubServer, online: None) -> None:
    api = HfApi(endpoint=server.endpoint)
    for revision in ("iter9", "iter2~1", "HEAD", "f" * 40):
        status, headers, body = _http(f"{server.endpoint}/api/datasets/{REPO}/revision/{revision}")
        assert (status, headers["x-error-code"]) == (404, "RevisionNotFound")
        assert revision in json.loads(body)["error"]
        with pytest.raises(HubRevisionNotFoundError):
            api.dataset_info(REPO, revision=revision)
    with pytest.raises(HubRevisionNotFoundError):
        hf_hub_download(REPO, "README.md", repo_type="dataset", revision="iter9", endpoint=server.endpoint)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("org/missing", revision="iter1")
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_refs("org/missing", repo_type="dataset")
    status, headers, body = _http(f"{server.endpoint}/datasets/{REPO}/resolve/iter1/no/such/file.txt")
    sha = resolve_revision(REPO, "iter1", endpoint=server.endpoint)
    assert (status, headers["x-error-code"], headers["x-repo-commit"]) == (404, "EntryNotFound", sha)
    assert json.loads(body) == {"error": "Entry not found: no/such/file.txt"}
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "no/such/file.txt", repo_type="dataset", revision="iter1", endpoint=server.endpoint)
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(REPO, path_in_repo="no-such-folder", repo_type="dataset", revision="iter1"))
    # names resolve exactly: refs/tags/iter1 and the full sha are iter1, and a tag is never a rev expression
    for name in ("iter1", "refs/tags/iter1", sha):
        assert api.dataset_info(REPO, revision=name).sha == sha


def test_range_requests_answer_206_with_exactly_those_bytes(server: HubServer, published: dict) -> None:
    shard: Path = published["big_shard"]
    raw = shard.read_bytes()
    url = f"{server.endpoint}/datasets/{BIG}/resolve/iter1/data/{shard.name}"
    size = len(raw)
    assert size > 5_000_000
    cases = {"bytes=0-99": raw[:100], "bytes=4000000-4000999": raw[4_000_000:4_001_000],
             f"bytes={size - 8}-": raw[-8:], "bytes=-4": raw[-4:], f"bytes=10-{size + 50}": raw[10:]}
    for header, expected in cases.items():
        status, headers, body = _http(url, headers={"Range": header})
        assert status == 206, header
        assert body == expected, header
        start = size - len(expected) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
        assert headers["content-range"] == f"bytes {start}-{start + len(expected) - 1}/{size}"
        assert headers["content-length"] == str(len(expected))
    for bad in ("bytes=abc", "bytes=9-3", "bytes=", f"bytes={size}-", "bytes=-0", f"bytes={'9' * 5000}-"):
        status, headers, _ = _http(url, headers={"Range": bad})
        assert (status, headers["content-range"]) == (416, f"bytes */{size}"), bad[:40]
    # RFC 9110: an unknown unit is ignored (the whole file), empty list elements are ignored, and a
    # last position of any length is cut at the end of the file
    status, headers, body = _http(url, headers={"Range": "items=0-1"})
    assert (status, len(body), "content-range" in headers) == (200, size, False)
    status, headers, body = _http(url, headers={"Range": "bytes=0-3,"})
    assert (status, body, headers["content-range"]) == (206, raw[:4], f"bytes 0-3/{size}")
    status, headers, body = _http(url, headers={"Range": f"bytes={size - 2}-{'9' * 5000}"})
    assert (status, body) == (206, raw[-2:])
    status, headers, body = _http(url, method="HEAD")
    blob = hashlib.sha1(b"blob %d\0" % size + raw).hexdigest()
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(size) and headers["etag"] == f'"{blob}"'
    assert headers["x-repo-commit"] == GitStore(published["store"]).resolve(BIG, "iter1")
    assert headers["accept-ranges"] == "bytes"


def test_streaming_and_pandas_read_a_multi_mb_shard_through_ranges(server: HubServer, published: dict,
                                                                   tmp_path: Path) -> None:
    shard: Path = published["big_shard"]
    got = _stock(server, tmp_path / "hf", "stream", BIG, f"data/{shard.name}")
    assert got["streamed"] == published["expected"]["big"]
    assert got["pandas"] == published["expected"]["big"]
    assert got["critique_chars"] == sum(len(c) for c in pq.read_table(shard, columns=["critique"])
                                        .column("critique").to_pylist())
    print(f"\nstreamed {shard.stat().st_size / 1e6:.1f} MB ({len(got['streamed'])} rows) in {got['stream_s']:.2f} s; "
          f"pandas.read_parquet(hf://) {got['pandas_s']:.2f} s")


def test_small_binary_empty_files_and_an_empty_revision_serve(server: HubServer, published: dict,
                                                               tmp_path: Path, online: None) -> None:
    api = HfApi(endpoint=server.endpoint)
    kwargs = dict(repo_type="dataset", endpoint=server.endpoint, cache_dir=tmp_path / "hub")
    tiny = hf_hub_download(ODD, "tiny.bin", revision="files", **kwargs)
    assert Path(tiny).read_bytes() == TINY_BINARY
    assert Path(hf_hub_download(ODD, "empty.txt", revision="files", **kwargs)).read_bytes() == b""
    listing = {f.path: f.size for f in api.list_repo_tree(ODD, repo_type="dataset", revision="files")}
    assert listing == {"README.md": 12, "empty.txt": 0, "tiny.bin": 130}
    (info,) = api.get_paths_info(ODD, ["tiny.bin"], repo_type="dataset", revision="files", expand=True)
    assert info.size == 130 and info.last_commit is not None
    assert info.blob_id == hashlib.sha1(b"blob 130\0" + TINY_BINARY).hexdigest()
    assert sorted(s.rfilename for s in api.dataset_info(ODD, revision="files").siblings) == sorted(listing)
    files = f"{server.endpoint}/datasets/{ODD}/resolve/files"
    status, _, body = _http(f"{files}/tiny.bin", headers={"Range": "bytes=120-"})
    assert (status, body) == (206, TINY_BINARY[120:])
    status, headers, _ = _http(f"{files}/empty.txt", headers={"Range": "bytes=0-"})
    assert (status, headers["content-range"]) == (416, "bytes */0")
    empty = api.dataset_info(ODD, revision="empty")
    assert empty.sha == resolve_revision(ODD, "empty", endpoint=server.endpoint)
    assert list(empty.siblings or []) == []
    assert list(api.list_repo_tree(ODD, repo_type="dataset", revision="empty")) == []
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(ODD, "README.md", revision="empty", **kwargs)


def test_nothing_can_be_written_through_the_server(server: HubServer, published: dict, tmp_path: Path,
                                                   online: None) -> None:
    store = GitStore(published["store"])
    before = store.refs(REPO)
    for method, path in (("POST", f"/api/datasets/{REPO}/commit/main"), ("PUT", f"/datasets/{REPO}/resolve/main/x"),
                         ("DELETE", f"/api/datasets/{REPO}"), ("POST", "/api/repos/create"),
                         ("POST", f"/api/datasets/{REPO}/preupload/main")):
        status, headers, body = _http(server.endpoint + path, method=method, data=b"{}")
        assert status == 405 and "GET" in headers["allow"], (method, path)
        assert "read-only" in json.loads(body)["error"]
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=server.endpoint, token="hf_x").upload_file(
            path_or_fileobj=tmp_path / "x.txt", path_in_repo="x.txt", repo_id=REPO, repo_type="dataset")
    assert store.refs(REPO) == before


def test_serving_a_store_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-store"
    proc = subprocess.run([sys.executable, "-m", "videosavi", "hub", "serve", "--store", str(missing), "--port",
                           str(free_port())], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "does not exist" in proc.stderr and str(missing) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not missing.exists()

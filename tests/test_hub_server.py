"""olah serving a published store: stock `datasets.load_dataset(repo, revision=tag)` reads each
iteration, `load_revision` refuses missing revisions, and the server starts and stops cleanly."""

from __future__ import annotations

import json
import os
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

from tests.factories import make_pairs, write_run_dir
from videosavi.errors import HubError, RevisionNotFoundError
from videosavi.hub.load import load_revision, resolve_revision
from videosavi.hub.publish import publish_run
from videosavi.hub.serve import HubServer, free_port

REPO = "org/videosavi"
SENTINEL = "hf_SENTINEL_do_not_publish_4242"
ROOT = Path(__file__).resolve().parents[1]

_LOAD_SCRIPT = """
import json, sys
import datasets
repo, rev = sys.argv[1], sys.argv[2]
default = datasets.load_dataset(repo, revision=rev, split="train")
swift = datasets.load_dataset(repo, "swift", revision=rev, split="train")
print(json.dumps({"pair_ids": list(default["pair_id"]), "iterations": sorted(set(default["iteration"])),
                  "chosen": list(default["chosen"]), "questions": list(default["question"]),
                  "swift_columns": swift.column_names, "swift": swift.to_list()}))
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("hub")
    store = base / "store"
    expected = {}
    for it, n_videos in ((1, 3), (2, 4)):
        run = write_run_dir(base / f"iter{it}", make_pairs(n_videos=n_videos, iteration=it, seed=it), iteration=it,
                            pairs_per_shard=10).path
        publish_run(run, REPO, store=store, progress=False)
        expected[f"iter{it}"] = pq.read_table(run / "data").column("pair_id").to_pylist()
    return {"base": base, "store": store, "expected": expected}


@pytest.fixture(scope="module")
def server(published: dict[str, object]) -> Iterator[HubServer]:
    base = published["base"]
    assert isinstance(base, Path)
    with HubServer(published["store"], port=0, log_path=base / "olah.log") as srv:
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
    # what olah itself answers for an unknown revision (the reason for resolving first)
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(f"{server.endpoint}/api/datasets/{REPO}/revision/iter9", timeout=10)
    assert http.value.code == 401
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
    assert SENTINEL not in (base / "olah.log").read_text(errors="replace")


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
        pytest.fail("olah still answers after `savi hub serve` was stopped")


def test_busy_port_is_a_clear_error(published: dict) -> None:
    with HubServer(published["store"]) as srv, pytest.raises(HubError, match="already in use"):
        HubServer(published["store"], port=srv.port).start()

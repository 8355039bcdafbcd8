"""Publishing run directories into the local git store: one commit + tag per iteration, no-op
re-publish, refusal of changed content, atomicity under injected failures, validation, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.helpers.factories import make_pairs, write_run_dir
from videosavi import _faults as faults
from videosavi.cli import app
from videosavi.errors import HubError, PublishError, RevisionNotFoundError
from videosavi.hub.load import load_revision, resolve_revision
from videosavi.hub.plan import PublishPlan, RepoState, plan_publish
from videosavi.hub.publish import publish_run
from videosavi.hub.store import GitStore
from videosavi.progress import enable_progress_bars

REPO = "org/videosavi"
SENTINEL = "hf_SENTINEL_do_not_publish_4242"
ROOT = Path(__file__).resolve().parents[2]


def git(store: Path, *args: str) -> str:
    bare = store / "datasets" / "org" / "videosavi"
    return subprocess.run(["git", f"--git-dir={bare}", *args], capture_output=True, text=True, check=True).stdout


def refs(store: Path) -> dict[str, str]:
    out = git(store, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines())


def tree_files(store: Path, rev: str) -> list[str]:
    return git(store, "ls-tree", "-r", "--name-only", rev).split()


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, Path]:
    """Two iterations' run directories (different videos, sizes and shard counts)."""
    r1 = write_run_dir(tmp_path / "iter1", make_pairs(n_videos=3, iteration=1, seed=1), iteration=1,
                       pairs_per_shard=10).path
    r2 = write_run_dir(tmp_path / "iter2", make_pairs(n_videos=4, iteration=2, seed=2), iteration=2,
                       pairs_per_shard=100).path
    return {"iter1": r1, "iter2": r2}


def test_two_iterations_become_two_tagged_commits_on_main(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    r1 = publish_run(runs["iter1"], REPO, store=store)
    r2 = publish_run(runs["iter2"], REPO, store=store)
    assert (r1.tag, r2.tag) == ("iter1", "iter2")
    assert not r1.noop and not r2.noop and r1.commit_sha != r2.commit_sha
    assert Path(r1.url_or_path) == store / "datasets" / "org" / "videosavi"
    # iter2's commit has iter1's as parent: one commit per iteration on main, each tagged (annotated)
    assert git(store, "rev-list", "main").split() == [r2.commit_sha, r1.commit_sha]
    assert git(store, "rev-parse", "iter1^{commit}").strip() == r1.commit_sha
    assert git(store, "cat-file", "-t", "iter2").strip() == "tag"
    files1, files2 = tree_files(store, "iter1"), tree_files(store, "iter2")
    shards1 = sorted(p for p in files1 if p.startswith("data/"))
    assert shards1 == [f"data/train-0000{i}-of-00002.parquet" for i in range(2)]
    # the shard count changed: iter2 holds only its own single shard, no stale one from iter1
    assert [p for p in files2 if p.startswith("data/")] == ["data/train-00000-of-00001.parquet"]
    for required in ("README.md", "build.json", "videos.parquet", "quarantine_summary.json",
                     "prompts/question.txt", "plots/error_types.png", "swift/train-00000-of-00001.parquet"):
        assert required in files2
    # the data are the run's own rows, in TRL's conversational preference form
    blob = subprocess.run(["git", f"--git-dir={store / 'datasets' / 'org' / 'videosavi'}", "cat-file", "blob",
                           "iter2:data/train-00000-of-00001.parquet"], capture_output=True, check=True).stdout
    published = pq.read_table(pa.BufferReader(blob))
    local = pq.read_table(runs["iter2"] / "data/train-00000-of-00001.parquet")
    assert published.column("pair_id").to_pylist() == local.column("pair_id").to_pylist()
    assert published.column("chosen_text").to_pylist() == local.column("chosen").to_pylist()
    assert [m[0]["content"][0]["text"] for m in published.column("rejected").to_pylist()] == \
        local.column("rejected").to_pylist()


def test_card_follows_length_ratio_and_severity_over_every_earlier_iteration(runs: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    from videosavi.cards.stats import fmt
    from videosavi.curation import pairs_frame, summarize

    store = tmp_path / "store"
    r3 = write_run_dir(tmp_path / "iter3", make_pairs(n_videos=2, iteration=3, seed=3), iteration=3).path
    for run in (runs["iter1"], runs["iter2"], r3):
        publish_run(run, REPO, store=store)
    readme = git(store, "show", "iter3:README.md")
    section = readme[readme.index("## Length ratio and severity mix across iterations"):]
    header, _, *rows = [line for line in section.splitlines()[1:] if line.startswith("|")][:9]
    assert header == "|  | iter1 | iter2 | iter3 |"
    found = {r.strip("|").split(" | ")[0].strip(): [c.strip() for c in r.strip("|").split(" | ")[1:]] for r in rows}
    medians = [fmt(summarize(pairs_frame(run)).length_ratio.median) for run in (runs["iter1"], runs["iter2"], r3)]
    assert found["length ratio (median)"] == medians
    assert "plots/trend.png" in tree_files(store, "iter3") and "plots/trend.png" not in tree_files(store, "iter1")


def test_republish_is_a_noop_and_changed_content_is_refused_without_force(runs: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = publish_run(runs["iter1"], REPO, store=store)
    before = refs(store)
    again = publish_run(runs["iter1"], REPO, store=store)
    assert again.noop and again.commit_sha == first.commit_sha
    assert refs(store) == before

    # a rebuilt iteration 1 with other rows: same tag, different content
    rebuilt = write_run_dir(tmp_path / "iter1b", make_pairs(n_videos=2, iteration=1, seed=9), iteration=1).path
    with pytest.raises(PublishError, match=r"already exists .* different content"):
        publish_run(rebuilt, REPO, store=store)
    assert refs(store) == before

    forced = publish_run(rebuilt, REPO, store=store, force=True)
    assert not forced.noop and forced.commit_sha != first.commit_sha
    assert git(store, "rev-parse", "iter1^{commit}").strip() == forced.commit_sha
    assert git(store, "rev-list", "main").split() == [forced.commit_sha, first.commit_sha]
    # the store keeps a reflog, so the moved tag's old target can be found again
    reflog = store / "datasets" / "org" / "videosavi" / "logs" / "refs" / "tags" / "iter1"
    assert len(reflog.read_text().splitlines()) == 2


def test_custom_tag_names_the_revision_in_its_card_and_bad_names_are_refused(runs: dict[str, Path],
                                                                             tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish_run(runs["iter1"], REPO, store=store)
    alias = publish_run(runs["iter1"], REPO, store=store, tag="iter1-final")
    assert not alias.noop
    assert 'revision="iter1-final"' in git(store, "show", "iter1-final:README.md")
    assert git(store, "rev-list", "--count", "main").strip() == "2"
    with pytest.raises(HubError, match="invalid tag"):
        publish_run(runs["iter1"], REPO, store=store, tag="--upload-pack=evil")
    with pytest.raises(HubError, match="invalid repository id"):
        publish_run(runs["iter1"], "../escape", store=store)


@pytest.mark.parametrize("state, force, expected", [
    (RepoState(None, False, None, False), False, PublishPlan("commit_and_tag")),
    (RepoState("t", True, "h", False), False, PublishPlan("noop", commit="t")),
    (RepoState(None, False, "h", True), False, PublishPlan("tag_head", commit="h")),
    (RepoState(None, False, "h", False), False, PublishPlan("commit_and_tag", parent="h")),
    (RepoState("t", False, "h", False), True, PublishPlan("commit_and_tag", parent="h", move_tag_from="t")),
    (RepoState("t", False, "h", True), True, PublishPlan("tag_head", commit="h", move_tag_from="t")),
])
def test_publish_rules(state: RepoState, force: bool, expected: PublishPlan) -> None:
    assert plan_publish(state, repo=REPO, tag="iter1", force=force) == expected


def test_publish_rules_refuse_changed_content_without_force() -> None:
    with pytest.raises(PublishError, match="--overwrite"):
        plan_publish(RepoState("t" * 40, False, "h" * 40, True), repo=REPO, tag="iter1", force=False)


_PUBLISH_SCRIPT = """
import sys
from videosavi.hub.publish import publish_run
publish_run(sys.argv[1], sys.argv[2], store=sys.argv[3])
print("UNREACHED")
"""


def test_crash_between_commit_and_tag_leaves_no_tag_and_no_commit(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    r1 = publish_run(runs["iter1"], REPO, store=store)
    before = refs(store)
    # a real process killed (SIGKILL) after the commit object exists and before the tag/push
    env = {**os.environ, "VIDEOSAVI_FAULT": "publish_committed:1:kill"}
    proc = subprocess.run([sys.executable, "-c", _PUBLISH_SCRIPT, str(runs["iter2"]), REPO, str(store)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == -9, proc.stderr
    assert "UNREACHED" not in proc.stdout
    assert refs(store) == before
    assert "refs/tags/iter2" not in refs(store)
    assert git(store, "rev-parse", "main").strip() == r1.commit_sha
    # the next attempt succeeds normally
    assert publish_run(runs["iter2"], REPO, store=store).tag == "iter2"


def test_error_between_commit_and_tag_leaves_store_unchanged(runs: dict[str, Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    publish_run(runs["iter1"], REPO, store=store)
    before = refs(store)
    monkeypatch.setattr(faults, "_hits", {})
    monkeypatch.setenv("VIDEOSAVI_FAULT", "publish_committed:1:enospc")
    with pytest.raises(OSError, match="No space left"):
        publish_run(runs["iter2"], REPO, store=store)
    assert refs(store) == before


def test_push_is_atomic_when_the_store_rejects_the_tag(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    r1 = publish_run(runs["iter1"], REPO, store=store)
    hook = store / "datasets" / "org" / "videosavi" / "hooks" / "update"
    # an `update` hook runs per ref: it accepts main and rejects the tag; --atomic must then move neither
    hook.write_text('#!/bin/sh\ncase "$1" in refs/tags/*) echo "tags are frozen" >&2; exit 1;; esac\nexit 0\n')
    hook.chmod(0o755)
    with pytest.raises(PublishError, match="nothing was changed"):
        publish_run(runs["iter2"], REPO, store=store)
    assert git(store, "rev-parse", "main").strip() == r1.commit_sha
    assert "refs/tags/iter2" not in refs(store)


@pytest.mark.parametrize("damage, message", [
    ("count", "counts.pairs"),
    ("schema", "schema differs"),
    ("gap", "missing"),
    ("foreign", "not a shard name"),
    ("row", "row 0"),
    ("no_build", "no build.json"),
])
def test_invalid_run_dirs_are_refused_before_anything_is_published(runs: dict[str, Path], tmp_path: Path,
                                                                   damage: str, message: str) -> None:
    run = runs["iter1"]
    data = run / "data"
    if damage == "count":
        info = json.loads((run / "build.json").read_text())
        info["counts"]["pairs"] += 1
        (run / "build.json").write_text(json.dumps(info))
    elif damage == "schema":
        shard = data / "train-00000-of-00002.parquet"
        pq.write_table(pq.read_table(shard).drop_columns(["critique"]), shard)
    elif damage == "gap":
        (data / "train-00001-of-00002.parquet").unlink()
    elif damage == "foreign":
        (data / "notes.txt").write_text("hello")
    elif damage == "row":
        shard = data / "train-00000-of-00002.parquet"
        table = pq.read_table(shard)
        chosen = table.column("chosen").to_pylist()
        table = table.set_column(table.schema.get_field_index("chosen"), table.schema.field("chosen"),
                                 pa.array(["   ", *chosen[1:]]))
        pq.write_table(table, shard)
    elif damage == "no_build":
        (run / "build.json").unlink()
    store = tmp_path / "store"
    with pytest.raises(PublishError, match=message):
        publish_run(run, REPO, store=store)
    assert not (store / "datasets" / "org" / "videosavi").exists()


def test_no_token_in_published_files_messages_or_output(runs: dict[str, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    store = tmp_path / "store"
    enable_progress_bars()  # the spinners print too, and must not show the token either
    publish_run(runs["iter1"], REPO, store=store)
    publish_run(runs["iter2"], REPO, store=store, token=SENTINEL)
    out = tmp_path / "export"
    gs = GitStore(store)
    for tag in ("iter1", "iter2"):
        for path in gs.export(REPO, gs.resolve(REPO, tag), out / tag):
            assert SENTINEL.encode() not in path.read_bytes(), path
    assert SENTINEL not in git(store, "log", "--all", "--format=%B%n%an%n%cn")
    assert SENTINEL not in git(store, "cat-file", "-p", "iter2")
    captured = capsys.readouterr()
    assert SENTINEL not in captured.out + captured.err


def test_load_revision_from_a_store_path(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    r1 = publish_run(runs["iter1"], REPO, store=store)
    publish_run(runs["iter2"], REPO, store=store)
    expected = {it: set(pq.read_table(runs[it] / "data").column("pair_id").to_pylist()) for it in runs}
    for it in ("iter1", "iter2"):
        ds = load_revision(REPO, it, store=store, cache_dir=tmp_path / "cache")
        assert set(ds["pair_id"]) == expected[it]
    assert resolve_revision(REPO, r1.commit_sha, store=store) == r1.commit_sha
    assert resolve_revision(REPO, "refs/tags/iter1", store=store) == r1.commit_sha
    swift = load_revision(REPO, "iter1", store=store, config_name="swift", cache_dir=tmp_path / "cache")
    assert swift.num_rows == len(expected["iter1"])
    for bad in ("iter3", "iter1~1", "HEAD", "0" * 40):
        with pytest.raises(RevisionNotFoundError):
            load_revision(REPO, bad, store=store, cache_dir=tmp_path / "cache")
    with pytest.raises(RevisionNotFoundError, match="no dataset repository"):
        load_revision("org/other", "iter1", store=store)
    with pytest.raises(HubError, match="no config"):
        load_revision(REPO, "iter1", store=store, config_name="nope", cache_dir=tmp_path / "cache")


def test_cli_publish_and_resolve(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli = CliRunner()
    res = cli.invoke(app, ["publish", str(runs["iter1"]), "--dataset", REPO, "--store", str(store), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "published org/videosavi@iter1" in res.output and f"savi hub serve --store {store}" in res.output
    res = cli.invoke(app, ["publish", str(runs["iter1"]), "--dataset", REPO, "--store", str(store), "--no-progress"])
    assert res.exit_code == 0 and "nothing to do" in res.output
    res = cli.invoke(app, ["publish", str(runs["iter2"]), "--dataset", REPO, "--store", str(store), "--tag", "iter1",
                           "--no-progress"])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = cli.invoke(app, ["publish", str(runs["iter1"]), "--dataset", REPO, "--store", str(store), "--hub"])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = cli.invoke(app, ["hub", "resolve", "-d", REPO, "-r", "iter1", "--store", str(store)])
    assert res.exit_code == 0 and res.output.strip() == GitStore(store).resolve(REPO, "iter1")
    res = cli.invoke(app, ["hub", "resolve", "-d", REPO, "-r", "iter5", "--store", str(store)])
    assert res.exit_code == 2 and "no revision 'iter5'" in res.output


# -- issue 13: publish order, races, git's messages, leftovers of a kill -9 ------------------------------


def test_a_gap_is_refused_unless_allowed_and_main_stays_on_the_highest_iteration(runs: dict[str, Path],
                                                                                 tmp_path: Path) -> None:
    store = tmp_path / "store"
    r3 = write_run_dir(tmp_path / "iter3", make_pairs(n_videos=2, iteration=3, seed=3), iteration=3).path
    publish_run(runs["iter1"], REPO, store=store)
    with pytest.raises(PublishError, match=r"no iter2 .* publish iter2 first, or pass --allow-gap"):
        publish_run(r3, REPO, store=store)
    assert "refs/tags/iter3" not in refs(store)
    p3 = publish_run(r3, REPO, store=store, allow_gap=True)
    # the gap filled later gets its commit and tag, and main stays on iter3
    p2 = publish_run(runs["iter2"], REPO, store=store)
    assert git(store, "rev-parse", "main").strip() == p3.commit_sha
    assert git(store, "rev-parse", "iter2^{commit}").strip() == p2.commit_sha != p3.commit_sha
    assert [p for p in tree_files(store, "iter2") if p.startswith("data/")] == ["data/train-00000-of-00001.parquet"]
    # as does a forced re-publish of an older iteration
    rebuilt = write_run_dir(tmp_path / "iter1b", make_pairs(n_videos=2, iteration=1, seed=9), iteration=1).path
    forced = publish_run(rebuilt, REPO, store=store, force=True)
    assert git(store, "rev-parse", "iter1^{commit}").strip() == forced.commit_sha
    assert git(store, "rev-parse", "main").strip() == p3.commit_sha
    # the CLI says the same in one line
    res = CliRunner().invoke(app, ["publish", str(r3), "--dataset", "org/other", "--store", str(store),
                                   "--no-progress"])
    assert res.exit_code == 2 and "--allow-gap" in res.output and "Traceback" not in res.output


_RACE_SCRIPT = """
import sys
from videosavi.hub.publish import publish_run
print(publish_run(sys.argv[1], sys.argv[2], store=sys.argv[3], allow_gap=True).commit_sha)
"""


@pytest.mark.slow(seconds=18)
def test_racing_publishes_queue_and_main_ends_on_the_highest_iteration(runs: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    r3 = write_run_dir(tmp_path / "iter3", make_pairs(n_videos=2, iteration=3, seed=3), iteration=3).path
    for trial in range(3):
        store = tmp_path / f"store{trial}"
        publish_run(runs["iter1"], REPO, store=store)
        procs = [subprocess.Popen([sys.executable, "-c", _RACE_SCRIPT, str(run), REPO, str(store)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for run in (runs["iter2"], r3)]
        (out2, err2), (out3, err3) = (p.communicate(timeout=300) for p in procs)
        assert [p.returncode for p in procs] == [0, 0], err2 + err3
        assert git(store, "rev-parse", "main").strip() == out3.strip()
        assert git(store, "rev-parse", "iter2^{commit}").strip() == out2.strip()


def test_git_errors_are_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish_run(runs["iter1"], REPO, store=store)
    hook = store / "datasets" / "org" / "videosavi" / "hooks" / "update"
    hook.write_text('#!/bin/sh\necho "first line" >&2\necho "second line" >&2\nexit 1\n')
    hook.chmod(0o755)
    with pytest.raises(PublishError) as err:
        publish_run(runs["iter2"], REPO, store=store)
    message = str(err.value)
    assert "\n" not in message and "first line; " in message and "second line" in message


def test_staging_folders_of_a_killed_publish_are_removed_by_the_next_one(runs: dict[str, Path], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    store, tmp = tmp_path / "store", tmp_path / "tmp"
    tmp.mkdir()
    publish_run(runs["iter1"], REPO, store=store)
    env = {**os.environ, "VIDEOSAVI_FAULT": "publish_committed:1:kill", "TMPDIR": str(tmp)}
    proc = subprocess.run([sys.executable, "-c", _PUBLISH_SCRIPT, str(runs["iter2"]), REPO, str(store)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == -9, proc.stderr
    left = sorted(p.name.split("-")[1] for p in tmp.iterdir())
    assert left == ["publish", "stage"]  # a copy of the data, left by kill -9
    assert (tmp / next(p.name for p in tmp.iterdir() if "-stage-" in p.name) / "files" / "data").is_dir()
    live = tmp / f"videosavi-stage-{os.getppid()}-keep"  # a live process's folder is never touched
    live.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    publish_run(runs["iter2"], REPO, store=store)
    assert [p.name for p in tmp.iterdir()] == [live.name]

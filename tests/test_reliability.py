"""Issue 13: no traceback and no silent wrong data on any input, fault or misuse.

Each test below is one row (or a few) of docs/reliability.md: a run directory written by two builds,
a video replaced between sampling and decoding, a symbolic link out of a source root, and the inputs
that gave a traceback or a slow, noisy failure before (non-UTF-8 configs and file names, paths that
are files, a merge without shards, Ctrl-C, an unknown hub model while offline, configs that can sample
nothing, a file pattern naming a missing manifest column). Publishing's order and races are in
test_publish.py and test_hf_backend.py, the CSV guard in test_humaneval.py, random inputs in
test_fuzz_inputs.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers.build_helpers import (
    SMALL_LIMIT,
    cached_calls,
    rows,
    savi_command,
    small_options,
    subprocess_env,
    write_small_config,
)
from tests.helpers.factories import make_pairs, write_run_dir
from tests.helpers.videos import make_video
from videosavi.builders.decode.errors import ChangedSinceSamplingError, OutsideRootError
from videosavi.builders.decode.source_decode import decode_sampled_video
from videosavi.builders.generate.call_cache import CallCache
from videosavi.builders.run.merge import merge_shards
from videosavi.builders.run.runner import load_or_sample, run_build
from videosavi.builders.sources.sampler import file_status, sample_videos
from videosavi.cli import app
from videosavi.config import load_config
from videosavi.errors import ConfigError, LockedError, ManifestError, ModelError
from videosavi.hashing import sha256_file
from videosavi.hub.publish import publish_run
from videosavi.out_guard import write_marker
from videosavi.run_dir import RunDir

HOLD_LOCK = """
import sys, time
from videosavi.locking import exclusive
with exclusive(sys.argv[1], "savi-build"):
    print("held", flush=True)
    time.sleep(600)
"""


def one_line_error(output: str) -> str:
    """The single `error: ...` line a refused command prints (and no traceback)."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    return errors[0]


def folder_config(path: Path, quota: int, **source: object) -> Path:
    """The small config with one plain-folder source `clips/` (options in `source`)."""
    write_small_config(path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["sources"] = {"clips": {"kind": "folder", "root": "clips", "quota": quota, **source}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


# -- 1. one build per run directory ---------------------------------------------------------------------


def test_a_live_run_directory_refuses_a_second_build_even_forced_and_a_dead_holder_is_taken_over(
        small_config: Path, demo_root: Path, small_reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "videos.parquet").write_bytes(b"the live build's sample")
    write_marker(out, "savi-build")  # a live build marks its run directory as soon as it holds it
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True,
                              env=subprocess_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        args = ["build", "--config", str(small_config), "--data-root", str(demo_root), "--out", str(out),
                "--limit-videos", "1", "--overwrite", "--no-progress"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2
        line = one_line_error(res.output)
        assert f"pid {holder.pid} on {socket.gethostname()}" in line and "savi-build" in line and "since" in line
        assert (out / "videos.parquet").read_bytes() == b"the live build's sample"  # --overwrite wiped nothing
        # merging into it and publishing it are refused too
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            merge_shards(out, [small_reference])
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            publish_run(out, "org/locked", store=tmp_path / "store")
    finally:
        holder.kill()  # kill -9: no clean-up runs; the kernel drops the lock with the process
        holder.wait()
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert RunDir(out).read_build_info().counts.videos_done == 1


# -- 2. the hash in a row is the hash of the bytes decoded -------------------------------------------------


def test_a_video_replaced_after_sampling_is_skipped_and_no_row_keeps_its_old_hash(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(3):
        make_video(root / "clips" / f"v{i}.mp4", num_frames=30, width=96, height=64, seed=i)
    config = folder_config(tmp_path / "folder.yaml", quota=2)
    out = tmp_path / "run"
    sample = load_or_sample(RunDir(out), load_config(config), root)
    replaced = next(v for v in sample if v.available)
    old_hash = replaced.sha256
    make_video(root / "clips" / replaced.video_path, num_frames=30, width=96, height=64, seed=99)  # new bytes
    assert sha256_file(root / "clips" / replaced.video_path) != old_hash

    result = run_build(small_options(config, root, out, limit=None))
    skips = {s.video_path: s.reason for s in RunDir(out).read_skipped()}
    assert skips == {replaced.video_path: "changed_since_sampling"}
    assert result.info.counts.skip_reasons == {"changed_since_sampling": 1}
    found = rows(out)
    assert found and replaced.video_path not in {r["video_path"] for r in found}
    for r in found:  # every row's hash is its file's, as decoded
        assert r["video_sha256"] == sha256_file(root / "clips" / r["video_path"])
    assert old_hash not in {r["video_sha256"] for r in found}
    # the worker refuses by itself, and records the hash of what it decoded when it agrees
    path = root / "clips" / replaced.video_path
    with pytest.raises(ChangedSinceSamplingError):
        decode_sampled_video(str(path), str(root / "clips"), replaced.video_path, False, old_hash, 4)
    fresh = decode_sampled_video(str(path), str(root / "clips"), replaced.video_path, False, None, 4)
    assert fresh.sha256 == sha256_file(path) and fresh.frames.shape[0] == 4


# -- 3. a source root is a boundary ---------------------------------------------------------------------


def test_a_link_out_of_a_source_root_is_never_opened_unless_the_source_allows_it(tmp_path: Path) -> None:
    from videosavi.training.data import OUTSIDE_ROOT, resolve_files
    from videosavi.workflows.doctor.data_checks import check_source

    root, outside = tmp_path / "data", tmp_path / "elsewhere"
    clips = root / "clips"
    make_video(clips / "good.mp4", num_frames=20, width=96, height=64)
    make_video(outside / "secret.mp4", num_frames=20, width=96, height=64, seed=3)
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (clips / "alias.mp4").symlink_to(clips / "good.mp4")  # a link that stays inside: fine
    (clips / "escape.mp4").symlink_to(outside / "secret.mp4")
    (clips / "passwd.mp4").symlink_to(outside / "passwd")
    (clips / "sub").mkdir()
    (clips / "sub" / "up.mp4").symlink_to(Path("..") / ".." / ".." / "elsewhere" / "secret.mp4")
    secret_hashes = {sha256_file(outside / "secret.mp4"), sha256_file(outside / "passwd")}

    strict = sample_videos(load_config(folder_config(tmp_path / "strict.yaml", quota=5)), root)
    by_path = {v.video_path: v for v in strict.videos}
    assert {p: v.unavailable_reason for p, v in by_path.items() if not v.available} == {
        "escape.mp4": "outside_root", "passwd.mp4": "outside_root", "sub/up.mp4": "outside_root"}
    assert by_path["alias.mp4"].available and by_path["good.mp4"].available
    assert not secret_hashes & {v.sha256 for v in strict.videos}  # nothing outside was read
    # every other place a source file is opened applies the same rule
    assert file_status(clips, "escape.mp4") == "outside_root" and file_status(clips, "alias.mp4") is None
    with pytest.raises(OutsideRootError):
        decode_sampled_video(str(clips / "passwd.mp4"), str(clips), "passwd.mp4", False, None, 4)
    rows_ = [{"source": "clips", "video_path": p} for p in ("good.mp4", "escape.mp4")]
    files = resolve_files(rows_, {"clips": clips})
    assert files[1] == OUTSIDE_ROOT and isinstance(files[0], Path)
    with pytest.raises(Exception, match="outside the source root"):
        from videosavi.training.video_frames import row_video_file
        row_video_file({"source": "clips", "video_path": "escape.mp4"}, {"clips": clips})
    cfg = load_config(folder_config(tmp_path / "only-links.yaml", quota=1))
    shutil.move(clips / "good.mp4", tmp_path / "good.mp4")
    (clips / "alias.mp4").unlink()
    assert check_source("clips", cfg.sources["clips"], root, "cfg", False).status == "fail"  # doctor: none usable

    # `follow_symlinks: true` opts in (and the resolved files are hashed as they are)
    shutil.move(tmp_path / "good.mp4", clips / "good.mp4")
    allowed = load_config(folder_config(tmp_path / "follow.yaml", quota=5, follow_symlinks=True))
    followed = {v.video_path: v for v in sample_videos(allowed, root).videos}
    assert followed["escape.mp4"].available and followed["escape.mp4"].sha256 == sha256_file(outside / "secret.mp4")
    assert resolve_files(rows_, {"clips": clips}, follow_symlinks=("clips",))[1] == clips / "escape.mp4"


# -- 4. one line, never a traceback -----------------------------------------------------------------------


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\nsources: {}\n".encode("latin-1"))
    res = CliRunner().invoke(app, ["build", "--config", str(bad), "--no-progress"])
    assert res.exit_code == 2
    assert "is not UTF-8" in one_line_error(res.output) and str(bad) in res.output


def test_a_video_name_that_is_not_utf8_is_skipped_and_the_rest_is_sampled(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_video(root / "clips" / "good.mp4", num_frames=20, width=96, height=64)
    shutil.copyfile(root / "clips" / "good.mp4", os.fsencode(root / "clips") + b"/caf\xe9.mp4")
    result = sample_videos(load_config(folder_config(tmp_path / "f.yaml", quota=2)), root)
    assert [v.video_path for v in result.available] == ["good.mp4"]
    assert result.sources[0].rejected == 1
    assert result.rejected_examples[0].problem.startswith("bad_filename")


def test_paths_that_are_files_are_one_line_naming_the_path(small_config: Path, demo_root: Path,
                                                            tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cli = CliRunner()
    res = cli.invoke(app, ["build", "--config", str(small_config), "--data-root", str(demo_root), "--out",
                           str(a_file), "--limit-videos", "1", "--no-progress"])
    assert res.exit_code == 2 and str(a_file) in one_line_error(res.output)
    run = write_run_dir(tmp_path / "run", make_pairs(n_videos=1)).path
    res = cli.invoke(app, ["publish", str(run), "--dataset", "org/x", "--store", str(a_file), "--no-progress"])
    assert res.exit_code == 2 and str(a_file) in one_line_error(res.output)
    res = cli.invoke(app, ["demo", "--out", str(a_file), "--no-progress"])
    assert res.exit_code == 2 and str(a_file) in one_line_error(res.output)
    assert a_file.read_text() == "not a folder"
    res = cli.invoke(app, ["merge-shards", str(tmp_path), "--out", str(tmp_path / "merged")])
    assert res.exit_code == 2 and "no finished shard" in one_line_error(res.output)


def test_demo_never_removes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    res = CliRunner().invoke(app, ["demo", "--out", str(mine), "--no-progress"])
    assert res.exit_code == 2 and "holds other files" in one_line_error(res.output)
    assert (mine / "thesis.tex").read_text() == "months of work"


@pytest.mark.slow(seconds=22)
def test_ctrl_c_is_one_line_and_exit_130_and_the_same_command_resumes(small_config: Path, demo_root: Path,
                                                                     small_reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = savi_command("build", "--config", str(small_config), "--data-root", str(demo_root), "--out", str(out),
                       "--limit-videos", str(SMALL_LIMIT), "--no-progress")
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                           env=subprocess_env(VIDEOSAVI_FAULT="part_written:2:sigint"))
    assert first.returncode == 130, first.stderr
    assert "interrupted; run the same command to resume" in first.stderr and "Traceback" not in first.stderr
    before = cached_calls(out)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=subprocess_env())
    assert again.returncode == 0, again.stderr
    assert rows(out) == rows(small_reference)
    after = cached_calls(out)
    assert {k: after[k] for k in before} == before  # nothing done before Ctrl-C was redone
    # 7. build.json counts the calls of both processes: every call of an undisturbed build, once
    got, ref = RunDir(out).read_build_info().counts.stages, RunDir(small_reference).read_build_info().counts.stages
    assert {s: c.calls for s, c in got.items()} == {s: c.calls for s, c in ref.items()}


def test_stage_counts_of_every_process_are_summed(tmp_path: Path) -> None:
    with CallCache(tmp_path / "cache.sqlite") as cache:
        cache.save_counts("first", {"answer": {"calls": 5, "cached": 0, "retries": 1, "quarantined": 0}})
        cache.put_many([("k", "answer", "v", "text", "stop")],
                       counts=("second", {"answer": {"calls": 2, "cached": 5, "retries": 0, "quarantined": 1}}))
        cache.save_counts("first", {"answer": {"calls": 6, "cached": 0, "retries": 1, "quarantined": 0}})
        assert cache.stage_totals() == {"answer": {"calls": 8, "cached": 5, "retries": 1, "quarantined": 1}}


# -- 5. fail fast ----------------------------------------------------------------------------------------


def test_an_unknown_hub_model_fails_in_seconds_offline_and_when_the_hub_is_unreachable(
        small_config: Path, demo_root: Path, tmp_path: Path) -> None:
    args = ["build", "--config", str(small_config), "--data-root", str(demo_root), "--out", str(tmp_path / "r"),
            "--model", "someorg/no-such-video-model", "--limit-videos", "1", "--no-progress"]
    res = CliRunner().invoke(app, args)  # the test session runs with HF_HUB_OFFLINE=1
    assert res.exit_code == 2
    line = one_line_error(res.output)
    assert "HF_HUB_OFFLINE" in line and "tiny-qwen2-vl" in line and "savi model convert" in line
    # online, but nothing answers: the first connection error ends it (a closed local port, no retries)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in subprocess_env().items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
    proc = subprocess.run(savi_command(*args), capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc.stderr)
    assert "cannot be reached" in line and "tiny-qwen2-vl" in line
    from videosavi.builders.generate.models.hub_model import require_model_source

    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):  # training asks the same question first
        require_model_source("someorg/no-such-video-model")


def test_serving_a_store_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["hub", "serve", "--store", str(tmp_path / "typo")])
    assert res.exit_code == 2 and "does not exist" in one_line_error(res.output)


@pytest.mark.parametrize(("sources", "frames", "message"), [
    ({}, {}, "sources is empty"),
    ({"a": {"kind": "folder", "root": "a", "quota": 0}, "b": {"kind": "folder", "root": "b", "quota": 0}}, {},
     "every source has quota 0"),
    ({"a": {"kind": "folder", "root": "a", "quota": 1}}, {"resize": [0, 224]}, "both above 0"),
    ({"a": {"kind": "folder", "root": "a", "quota": 1}}, {"resize": [-5, 224]}, "both above 0"),
])
def test_configs_that_can_sample_nothing_are_refused_at_load(tmp_path: Path, sources: dict, frames: dict,
                                                              message: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"sources": sources, "frames": frames}), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_pattern_column_missing_from_the_manifest_is_refused_naming_the_columns(tmp_path: Path) -> None:
    (tmp_path / "star.json").write_text(json.dumps([{"video_id": "A1", "start": 0, "end": 2, "question": "q"}]))
    (tmp_path / "vidal.json").write_text(json.dumps({"yt1": {"folder": "f", "mplug": "a cat"}}))
    for kind, manifest, shown in (("star", "star.json", "end, question, start, video_id"),
                                  ("vidal", "vidal.json", "folder, mplug")):
        path = tmp_path / f"{kind}.yaml"
        path.write_text(yaml.safe_dump({"sources": {kind: {
            "kind": kind, "manifest": manifest, "root": "videos", "quota": 1, "pattern": "{clip_dir}/{video_id}.mp4",
        }}}), encoding="utf-8")
        with pytest.raises(ManifestError, match=r"uses 'clip_dir', which no (row|entry) has") as err:
            sample_videos(load_config(path), tmp_path)
        assert shown in str(err.value)


def test_oserrors_name_the_path_and_what_to_do() -> None:
    import errno

    from videosavi.commands._common import describe_os_error

    full = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/runs/iter1/cache.sqlite"))
    assert full.startswith("/data/runs/iter1/cache.sqlite: the disk is full")
    read_only = describe_os_error(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"))
    assert read_only == "/mnt/ro/out: the file system is read-only: choose a writable location"
    assert "[Errno" not in full + read_only


def test_stale_lock_holder_record_does_not_block(tmp_path: Path) -> None:
    from videosavi.locking import LOCK_FILE, exclusive

    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / f"{LOCK_FILE}.json").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with exclusive(folder, "savi-build"):  # a record without a live lock is only history
        record = json.loads((folder / f"{LOCK_FILE}.json").read_text())
        assert record["pid"] == os.getpid() and record["what"] == "savi-build"


def test_the_lock_is_reentrant_in_its_process_and_a_waiting_command_gets_it_when_the_holder_ends(
        tmp_path: Path) -> None:
    import threading

    from videosavi.locking import LOCK_FILE, exclusive

    folder = tmp_path / "run"
    record = folder / f"{LOCK_FILE}.json"
    with exclusive(folder, "savi-build"):
        with exclusive(folder, "savi merge-shards"):  # the Ray driver merges into the OUT it holds
            pass
        failed: list[BaseException] = []

        def other_thread() -> None:
            try:
                with exclusive(folder, "a thread"):
                    pass
            except BaseException as exc:  # handed to the main thread's assert
                failed.append(exc)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert failed == [] and json.loads(record.read_text())["what"] == "savi-build"  # nested holds keep it
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.replace("600", "2"), str(folder)],
                              stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"in use by savi-build \\(pid {holder.pid} on "), \
                exclusive(folder, "savi publish"):
            pass
        with exclusive(folder, "savi publish", wait_s=60):  # queued behind the holder, as publishes are
            assert json.loads(record.read_text())["what"] == "savi publish"
    finally:
        holder.kill()
        holder.wait()

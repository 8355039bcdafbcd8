"""Issue 23: overwrite replaces only what a command wrote; run directories are trusted only for what the
build wrote; incomplete runs are never published; the remaining cases end in one line.

Each test is one or a few rows of docs/reliability.md. Revisions crafted by a hostile publisher are in
test_crafted_revisions.py, the loop killed at each step boundary in test_loop_resume.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.build_helpers import small_options, write_small_config
from tests.helpers.factories import make_pairs, write_run_dir
from videosavi.cli import app
from videosavi.errors import ConfigError, ModelError, OutRefusedError, PublishError
from videosavi.hub.publish import publish_run
from videosavi.hub.store import GitStore
from videosavi.out_guard import MARKER, check_apart, check_folder, check_replaceable, claim_folder, replace_folder
from videosavi.run_dir import RunDir
from videosavi.schemas import SourceFill


def error_line(output: str) -> str:
    """The single `error: ...` line of a refused command (no traceback, a readable length)."""
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    assert len(errors[0]) < 1000
    return errors[0]


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (links as their target) and its content hash: what "nothing lost" means."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    """A data root of the small config's three sources, and a file of the user's beside them."""
    from videosavi.builders.sources.demo_data import write_demo_data

    root = tmp_path / "data"
    write_demo_data(root, videos_per_source=1)
    (root / "notes.txt").write_text("mine", encoding="utf-8")
    return root


# --- 1. overwrite: only what the command wrote -------------------------------------------------------------


def test_the_guard_replaces_a_folder_only_when_its_marker_says_the_command_wrote_all_of_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert check_replaceable(out, "savi export", force=False, flag="--overwrite") is False  # new
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    with pytest.raises(OutRefusedError, match=r"not empty.*--overwrite"):
        check_replaceable(out, "savi export", force=False, flag="--overwrite")
    with pytest.raises(OutRefusedError, match="was not written by savi export"):
        check_replaceable(out, "savi export", force=True, flag="--overwrite")
    tmp = tmp_path / "new"
    tmp.mkdir()
    (tmp / "train.jsonl").write_text("{}\n")
    shutil.rmtree(out)
    replace_folder(tmp, out, "savi export")
    assert json.loads((out / MARKER).read_text())["entries"] == ["train.jsonl"]
    assert check_replaceable(out, "savi export", force=True, flag="--overwrite") is True
    with pytest.raises(OutRefusedError, match="was not written by savi model convert"):
        check_replaceable(out, "savi model convert", force=True, flag="--overwrite")
    (out / "mine.txt").write_text("mine")  # the user adds a file to an export: it is no longer all ours
    with pytest.raises(OutRefusedError, match=r"1 thing\(s\) savi export did not write \(mine.txt\)"):
        check_replaceable(out, "savi export", force=True, flag="--overwrite")
    for where, inputs in [(tmp_path, {"data root": tmp_path}), (tmp_path, {"store": tmp_path / "s"}),
                          (tmp_path / "s" / "x", {"store": tmp_path / "s"})]:
        with pytest.raises(OutRefusedError, match=r"is the data root itself|contains the store|lies inside the store"):
            check_apart(where, inputs)
    check_apart(tmp_path / "runs", {}, containers={"data root": tmp_path})  # inside a data root is fine
    with pytest.raises(OutRefusedError, match=r"not written by savi train \(its \S+ names savi export"):
        check_folder(out, "savi train", owned=("adapter", "train.json"), replacing=True, flag="--overwrite")
    claimed = claim_folder(tmp_path / "fresh", "savi train", ("adapter",))
    check_folder(claimed, "savi train", owned=("adapter",), replacing=True, flag="--overwrite")


def test_export_into_the_data_root_or_a_video_root_is_refused_and_loses_nothing(data_root: Path,
                                                                                tmp_path: Path) -> None:
    """Was: `savi export --out DATA_ROOT --overwrite` deleted every source video and exited 0."""
    config = write_small_config(tmp_path / "small.yaml")
    before = tree(data_root)
    cases = [(data_root, "is the data root itself"), (data_root / "star", "contains the video root of star"),
             (data_root / "star" / "videos" / "export", "lies inside the video root of star")]
    for out, message in cases:
        res = CliRunner().invoke(app, ["export", "-d", "org/x", "-r", "iter1", "--store", str(tmp_path / "store"),
                                       "-f", "swift", "-c", str(config), "--data-root", str(data_root),
                                       "-o", str(out), "--overwrite", "--no-progress"])
        assert res.exit_code == 2 and message in error_line(res.output), (out, res.output)
    assert tree(data_root) == before


def _checkpoint_folder(path: Path, config: dict[str, Any] | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {}), encoding="utf-8")
    (path / "model.safetensors").write_bytes(b"")
    return path


def test_convert_never_writes_over_or_around_its_source(tmp_path: Path) -> None:
    """Was: `--out` = the source replaced it; `--out` = its parent deleted it and its neighbours."""
    src = _checkpoint_folder(tmp_path / "models" / "ck")
    (tmp_path / "models" / "other.txt").write_text("neighbour")
    before = tree(tmp_path / "models")
    for out, message in [(src, "is the source checkpoint itself"), (src.parent, "contains the source checkpoint"),
                         (src / "native", "lies inside the source checkpoint")]:
        res = CliRunner().invoke(app, ["model", "convert", "--model", str(src), "--out", str(out), "--overwrite"])
        assert res.exit_code == 2 and message in error_line(res.output), res.output
    assert tree(tmp_path / "models") == before


def test_humaneval_files_are_replaced_only_with_overwrite(tmp_path: Path) -> None:
    """Was: `savi humaneval export --out EXISTING --key EXISTING` overwrote both without being asked."""
    run = write_run_dir(tmp_path / "run", make_pairs(n_videos=8))
    out, key = tmp_path / "sheet.csv", tmp_path / "key.csv"
    out.write_text("my sheet")
    key.write_text("my key")
    args = ["humaneval", "export", "--run-dir", str(run.path), "--n", "4", "--out", str(out), "--key", str(key)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "--out" in error_line(res.output) and "--overwrite" in res.output
    assert (out.read_text(), key.read_text()) == ("my sheet", "my key")
    out.unlink()
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "--key" in error_line(res.output) and key.read_text() == "my key"
    res = CliRunner().invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert key.read_text() != "my key" and out.read_text().startswith("item_id")


def test_train_never_clears_a_folder_it_did_not_write_or_an_input(tmp_path: Path, videosavi_cache: str) -> None:
    """`savi train` removes its earlier adapter/ and merged/ before writing: never someone else's."""
    roots = tmp_path / "videos"
    (roots / "star").mkdir(parents=True)
    mine = tmp_path / "mine"
    (mine / "adapter").mkdir(parents=True)
    (mine / "adapter" / "weights.bin").write_text("my own adapter")
    (mine / "notes.txt").write_text("mine")
    before = tree(mine)
    base = ["train", "-d", "org/x", "-r", "iter1", "-m", "tiny-qwen2-vl", "--store", str(tmp_path / "store"),
            "--video-root", f"star={roots / 'star'}", "--no-progress"]
    for out, extra, message in [(mine, ["--overwrite"], "replaces only what savi train wrote"),
                                (mine, [], "replaces only what savi train wrote"),
                                (roots / "star" / "model", [], "lies inside the video root of star")]:
        res = CliRunner().invoke(app, [*base, "-o", str(out), *extra])
        assert res.exit_code == 2 and message in error_line(res.output), res.output
    assert tree(mine) == before


def test_build_force_discards_only_a_run_directory_a_build_wrote(data_root: Path, tmp_path: Path) -> None:
    config = write_small_config(tmp_path / "small.yaml")
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "thesis.parquet").write_text("years of work")
    before_mine, before_root = tree(mine), tree(data_root)
    for out, message in [(mine, "was not written by savi-build"), (data_root, "is the data root itself"),
                         (data_root / "star" / "videos" / "run", "lies inside the root of source star")]:
        res = CliRunner().invoke(app, ["build", "-c", str(config), "--data-root", str(data_root), "-o", str(out),
                                       "--overwrite", "--limit-videos", "1", "--no-progress"])
        assert res.exit_code == 2 and message in error_line(res.output), res.output
    assert tree(mine) == before_mine and tree(data_root) == before_root


def test_an_argument_that_is_not_utf8_is_one_line_naming_the_option(tmp_path: Path) -> None:
    out = os.fsdecode(bytes(tmp_path) + b"/exp\xff\xfeort")
    res = CliRunner().invoke(app, ["export", "-d", "org/x", "-r", "iter1", "-f", "swift", "-o", out,
                                   "--video-root", f"star={tmp_path}"])
    assert res.exit_code == 2 and "--out" in error_line(res.output) and "not UTF-8" in res.output


# --- 2. a run directory is trusted only for what its build wrote ------------------------------------------


def test_publish_refuses_links_special_files_and_templates_changed_after_the_build(tmp_path: Path) -> None:
    """Was: `prompts/answer.txt -> /etc/passwd` was published, served and used as the answer template."""
    store = tmp_path / "store"

    def link(run: Path, rel: str, target: Path | str) -> None:
        (run / rel).unlink()
        (run / rel).symlink_to(target)

    def build_json_link(run: Path) -> None:
        shutil.copyfile(run / "build.json", run.parent / "elsewhere.json")
        link(run, "build.json", run.parent / "elsewhere.json")

    cases = {
        "link": (lambda run: link(run, "prompts/answer.txt", "/etc/passwd"), "prompts/answer.txt is a symbolic link"),
        "build-json-link": (build_json_link, "build.json is a symbolic link"),
        "fifo": (lambda run: os.mkfifo(run / "data" / "train-00001-of-00002.parquet"),
                 "data/train-00001-of-00002.parquet is a special file"),
        "edited": (lambda run: (run / "prompts" / "answer.txt").write_text("Answer briefly: ${question}\n"),
                   "prompts/answer.txt was changed after the build"),
        "extra-template": (lambda run: (run / "prompts" / "extra.txt").write_text("x"),
                           "build.json names no template 'extra'"),
    }
    for name, (damage, message) in cases.items():
        run = write_run_dir(tmp_path / name, make_pairs(n_videos=2))
        damage(run.path)
        res = CliRunner().invoke(app, ["publish", str(run.path), "-d", "org/x", "--store", str(store),
                                       "--no-progress"])
        assert res.exit_code == 2, (name, res.output)
        assert message in res.output and "Traceback" not in res.output, (name, res.output)
        assert not GitStore(store).exists("org/x"), name


def test_a_checkpoint_index_naming_files_outside_src_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    """Was: a shard name of `/etc/passwd` was opened and hashed before being refused."""
    from videosavi.builders.generate.models.internvl_convert.source import open_source

    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"secret")
    for name, shard in [("absolute", str(outside)), ("dotdot", "../outside.safetensors"), ("link", "link.safetensors")]:
        src = _checkpoint_folder(tmp_path / name)
        (src / "model.safetensors").unlink()
        (src / "link.safetensors").symlink_to(outside)
        (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
        outside.chmod(0)  # opening it would fail differently: the refusal must come first, by name
        try:
            with pytest.raises(ModelError, match="refusing to open it"):
                open_source(str(src))
        finally:
            outside.chmod(0o644)


def test_convert_bounds_config_sizes_before_building_anything(tmp_path: Path) -> None:
    """Was: `num_hidden_layers: 1000000000` ran for minutes inside transformers; 10**12 sizes overflowed."""
    from videosavi.builders.generate.models.internvl_convert.config_map import plan_conversion

    def config(**llm: Any) -> dict[str, Any]:
        return {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "template": "internvl2_5",
                "ps_version": "v2", "downsample_ratio": 0.5,
                "llm_config": {"architectures": ["Qwen2ForCausalLM"], "vocab_size": 128, "hidden_size": 64,
                               "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "num_key_value_heads": 2, **llm},
                "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                  "intermediate_size": 64, "image_size": 64, "patch_size": 16}}

    assert plan_conversion(config()).text_config["num_hidden_layers"] == 2
    for bad, message in [({"num_hidden_layers": 10**9}, "num_hidden_layers is 1000000000, above 1024"),
                         ({"hidden_size": 10**12}, "hidden_size is 1000000000000"),
                         ({"vocab_size": 10**12}, "vocab_size"), ({"num_key_value_heads": "two"}, "not a positive"),
                         ({"max_position_embeddings": 10**12}, "max_position_embeddings")]:
        with pytest.raises(ConfigError, match=message):
            plan_conversion(config(**bad))
    src = _checkpoint_folder(tmp_path / "ck", config(num_hidden_layers=10**9))
    started = time.perf_counter()
    res = CliRunner().invoke(app, ["model", "convert", "--model", str(src), "--out", str(tmp_path / "native")])
    assert res.exit_code == 2 and "above 1024" in error_line(res.output)
    assert time.perf_counter() - started < 60 and not (tmp_path / "native").exists()


# --- 5. incomplete runs are never published -----------------------------------------------------------------


def _fill(**fields: int) -> SourceFill:
    return SourceFill(**{"quota_videos": 2, "requested_pairs": 4, "delivered_pairs": 4, **fields})


def test_publish_refuses_an_incomplete_run_naming_the_reason_and_the_command(tmp_path: Path) -> None:
    """Was: a build left with pending videos exited 0 and `savi publish` tagged it, 0 pairs included."""
    pairs = make_pairs(n_videos=2)
    store = tmp_path / "store"

    def counts_with(**sources: SourceFill) -> Any:
        from tests.helpers.factories import make_build_info

        counts = make_build_info(pairs).counts
        counts.sources = dict(sources)
        return counts

    cases = [
        ("pending", {"counts": counts_with(star=_fill(pending_videos=2))}, pairs, "2 video(s) are still pending"),
        ("stopped", {"stopped": "model calls failed 40 times in a row"}, pairs, "the build stopped before completing"),
        ("short", {"counts": counts_with(star=_fill(delivered_pairs=2, shortfall_pairs=2))}, pairs,
         "star 2 of 4"),
        ("empty", {}, [], "it holds 0 pairs"),
    ]
    for name, overrides, rows, message in cases:
        run = write_run_dir(tmp_path / name, rows, **overrides)
        with pytest.raises(PublishError, match=re.escape(message)) as exc:
            publish_run(run.path, "org/x", store=store)
        assert "savi-build" in str(exc.value) and "\n" not in str(exc.value)
        assert not GitStore(store).exists("org/x")
    res = CliRunner().invoke(app, ["publish", str(tmp_path / "pending"), "-d", "org/x", "--store", str(store)])
    assert res.exit_code == 2 and "run the same savi-build command again" in error_line(res.output)
    allowed = write_run_dir(tmp_path / "allowed", pairs, allow_shortfall=True,
                            counts=counts_with(star=_fill(delivered_pairs=2, shortfall_pairs=2)))
    assert publish_run(allowed.path, "org/x", store=store).tag == "iter1"
    preview = write_run_dir(tmp_path / "preview", pairs, limit_videos=2,
                            counts=counts_with(star=_fill(delivered_pairs=2, shortfall_pairs=2)))
    assert publish_run(preview.path, "org/preview", store=store).tag == "iter1"  # --limit-videos: a preview


def test_loop_does_not_publish_a_build_that_did_not_complete(tmp_path: Path) -> None:
    """Was: `savi loop` published right after the build without checking it."""
    from tests.helpers.factories import make_build_info
    from videosavi.workflows.loop import default_publish, run_loop

    pairs = make_pairs(n_videos=2)
    counts = make_build_info(pairs).counts
    counts.sources = {"star": _fill(pending_videos=1)}
    trained: list[int] = []

    def build(i: int, model: str, out: Path) -> Path:
        return write_run_dir(out, pairs, iteration=i, counts=counts).path

    def train(i: int, revision: str, model: str, output: Path) -> Path:
        trained.append(i)
        return output

    with pytest.raises(PublishError, match="still pending"):
        run_loop(1, "tiny-qwen2-vl", tmp_path / "loop", build=build,
                 publish=default_publish("org/loop", store=tmp_path / "store"), train=train)
    assert trained == [] and not GitStore(tmp_path / "store").exists("org/loop")


def test_rebuilding_a_finished_run_leaves_every_file_byte_identical(small_reference: Path, small_config: Path,
                                                                    demo_root: Path, tmp_path: Path) -> None:
    """build.json's created_at and timings included: publishing it again is then a no-op."""
    from videosavi.builders.run.runner import run_build

    run = tmp_path / "run"
    shutil.copytree(small_reference, run)
    working = ("cache.sqlite", "build.log", ".videosavi.lock")
    before = {k: v for k, v in tree(run).items() if not k.startswith(working)}
    run_build(small_options(small_config, demo_root, run))
    after = {k: v for k, v in tree(run).items() if not k.startswith(working)}
    assert after == before
    store = tmp_path / "store"
    first = publish_run(run, "org/again", store=store)
    run_build(small_options(small_config, demo_root, run))
    assert publish_run(run, "org/again", store=store).noop and first.tag == "iter1"


# --- 6. the rest: one line, exit 2 --------------------------------------------------------------------------


def test_a_full_disk_in_training_is_the_builds_one_line(tmp_path: Path, videosavi_cache: str) -> None:
    """Was: a SafetensorError traceback from the checkpoint write."""
    from safetensors import SafetensorError

    from tests.helpers.hostile import REPO, honest_store
    from videosavi.builders.run.disk_full import disk_full_error

    build_line = disk_full_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    rust = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                           'message: "No space left on device" })')
    train_line = disk_full_error(rust, tmp_path, kept="Checkpoints saved so far are kept")
    assert build_line is not None and train_line is not None
    for line in (str(build_line), str(train_line)):
        assert line.startswith(f"the disk holding {tmp_path} (file system at ") and "is full" in line
        assert line.endswith("free some space there, then run the same command again to resume.")
    assert disk_full_error(SafetensorError("header too large"), tmp_path) is None

    pub = honest_store(tmp_path / "pub")
    roots = [arg for s, d in pub.roots.items() for arg in ("--video-root", f"{s}={d}")]
    os.environ["VIDEOSAVI_FAULT"] = "train_save:1:enospc"
    try:
        res = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "iter1", "-m", "tiny-qwen2-vl", "-o",
                                       str(tmp_path / "model"), "--store", str(pub.store), "--max-steps", "1",
                                       "--per-device-batch-size", "2", "--no-progress", *roots])
    finally:
        del os.environ["VIDEOSAVI_FAULT"]
    assert res.exit_code == 2
    line = error_line(res.output)
    assert line.startswith(f"error: the disk holding {tmp_path / 'model'}") and "Checkpoints saved" in line


def test_previous_must_be_the_previous_iteration_of_the_same_dataset(tmp_path: Path) -> None:
    """Was: `--previous` from another dataset or the same iteration was taken (0 videos matched, no warning)."""
    from videosavi.builders.run.retrospective import matched_share_warning, resolve_previous

    pairs = [p.model_copy(update={"description": f"A video of {p.video_id}."}) for p in make_pairs(n_videos=4)]
    run = write_run_dir(tmp_path / "iter1", pairs).path  # dataset "videosavi-test", iteration 1
    kwargs = dict(retrospective=True, previous=str(run), descriptions=None)
    with pytest.raises(ConfigError, match="is dataset 'videosavi-test', but this build makes 'other'"):
        resolve_previous(iteration=2, name="other", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is iteration 1, but iteration 3 revises iteration 2"):
        resolve_previous(iteration=3, name="videosavi-test", **kwargs)  # type: ignore[arg-type]
    previous = resolve_previous(iteration=2, name="videosavi-test", **kwargs)  # type: ignore[arg-type]
    assert previous is not None and len(previous.descriptions) == 4
    uids = [p.video_uid for p in pairs]
    assert matched_share_warning(previous, uids) is None
    warning = matched_share_warning(previous, [*uids[:1], "star/other1", "star/other2", "star/other3"])
    assert warning is not None and "only 1 of 4 videos" in warning
    published = publish_run(run, "org/retro", store=tmp_path / "store")
    from videosavi.training.previous_revision import previous_from_revision

    ctx = previous_from_revision(f"org/retro@{published.tag}", store=tmp_path / "store")
    assert (ctx.name, ctx.iteration) == ("videosavi-test", 1)
    with pytest.raises(ConfigError, match="is iteration 1"):
        resolve_previous(retrospective=True, iteration=3, previous=ctx.label, descriptions=ctx.descriptions,
                         name="videosavi-test", origin={"name": ctx.name, "iteration": ctx.iteration})


def test_doctor_says_a_data_root_that_is_a_file_is_a_file(tmp_path: Path) -> None:
    """Was: `doctor --data-root /etc/passwd` suggested writing the demo data there."""
    from videosavi.workflows.doctor import DoctorOptions, run_doctor

    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    rows = {r.name: r for r in run_doctor(DoctorOptions(config="demo", data_root=a_file, store=tmp_path / "s"))}
    row = rows["data root"]
    assert row.status == "fail" and "is a file, not a folder" in row.detail
    assert "demo-data" not in row.fix and "--data-root" in row.fix


def test_eval_answer_on_a_damaged_eval_set_is_one_line(tmp_path: Path) -> None:
    """Was: a pydantic ValidationError traceback from `savi eval answer`."""
    damaged = tmp_path / "set"
    damaged.mkdir()
    for content in (b'{"set_id": 1}', b"\xff\xfe not text", b"[]"):
        (damaged / "evalset.json").write_bytes(content)
        res = CliRunner().invoke(app, ["eval", "answer", "--set", str(damaged), "-m", "tiny-qwen2-vl", "-o",
                                       str(tmp_path / "answers")])
        assert res.exit_code == 2 and "evalset.json is not a valid EvalSetInfo" in error_line(res.output)


def test_a_run_dir_the_build_claims_is_marked(tmp_path: Path, small_reference: Path) -> None:
    """Builds mark their run directory, so a later `--overwrite` knows it is a build's to replace."""
    marker = json.loads((small_reference / MARKER).read_text(encoding="utf-8"))
    assert marker["command"] == "savi-build" and "build.json*" in marker["entries"]
    assert RunDir(small_reference).read_build_info().counts.pairs > 0

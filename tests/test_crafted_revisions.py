"""Issue 23: revisions a hostile publisher committed straight into a store (tests/helpers/hostile.py).

Every reader of a revision (`savi export`, `savi train` and its collator, `savi-build --previous`) parses
what it reads at the boundary: a bad row is skipped with a reason and counted, a bad revision-level file
(build.json, the answer template, the card) is one line and exit 2, and nothing is ever a traceback.
The fixed cases are the ones the issue's probe met on 630751c; the hypothesis test corrupts random
fields of random rows and asserts the same of whatever comes out.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.helpers.hostile import REPO, SHARD, Store, craft, honest_store
from videosavi.cli import app
from videosavi.errors import VideosaviError

ROW_BOUND = 1000  # an error line longer than this is not "one line" a person can read


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, videosavi_cache: str) -> Store:
    return honest_store(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def processor(videosavi_cache: str) -> Any:
    from videosavi.training.model_io import load_policy, resolve_model_source

    return load_policy(resolve_model_source("tiny-qwen2-vl"))[1]


def _roots(store: Store) -> list[str]:
    return [arg for s, d in store.roots.items() for arg in ("--video-root", f"{s}={d}")]


def export_cli(store: Store, tag: str, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["export", "-d", REPO, "-r", tag, "--store", str(store.store), "-f", "swift",
                                    "-o", str(out), "--max-missing-share", "1.0", "--no-progress", *_roots(store),
                                    *extra])


def error_line(output: str) -> str:
    """The one `error:` line of a refused command: no traceback, one line, of readable length."""
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    assert len(errors[0]) < ROW_BOUND, errors[0][:300]
    return errors[0]


def skipped(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "skipped.jsonl").read_text(encoding="utf-8").splitlines()]


def no_staging_left(out: Path) -> None:
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")] == []


def training_data_path(store: Store, tag: str, processor: Any) -> None:
    """What `savi train` does with a revision before and while it trains: open it, check every row, and
    collate the rows kept (decoding their frames, rendering their prompts). Only our errors, one line."""
    from videosavi.training.collator import VideoDPOCollator
    from videosavi.training.data import prepare_training_data
    from videosavi.training.revision import open_revision

    try:
        rev = open_revision(REPO, tag, store=store.store)
        data = prepare_training_data(rev.dataset, store.roots, max_missing_share=1.0, resize=rev.resize)
        collator = VideoDPOCollator(processor, resize=rev.resize, answer_template=rev.answer_template)
        for row in data.rows:
            collator([row])
    except VideosaviError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < ROW_BOUND, str(exc)[:300]


def evaluation_readers(store: Store, tag: str, work: Path) -> None:
    """The evaluation side's readers of a revision: the human-eval sheet and the statistics."""
    location = ["-d", REPO, "-r", tag, "--store", str(store.store)]
    for args in (["humaneval", "export", *location, "--n", "3", "--allow-fewer", "--overwrite",
                  "--out", str(work / "sheet.csv"), "--key", str(work / "key.csv")],
                 ["stats", *location, "--json"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code in (0, 2), (args[0], res.output[-3000:])
        if res.exit_code == 2:
            error_line(res.output)


# --- rows: skipped with their reason, the rest exported -------------------------------------------------------


def _set(index: int, **fields: Any) -> Any:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[index].update(fields)
    return change


ROW_CASES = [
    ("negative-and-huge-indices", {"frame_indices": [-1, 10**12], "frame_timestamps": [0.0, 1.0]}, "bad_frame_indices"),
    ("indices-past-the-video", {"frame_indices": [0, 99]}, "bad_frame_indices"),
    ("nan-clip", {"clip_start": math.nan}, "bad_clip_span"),
    ("inf-clip", {"clip_end": math.inf}, "bad_clip_span"),
    ("long-file-name", {"video_path": "v" * 300 + ".mp4"}, "bad_path"),
    ("path-out-of-the-root", {"video_path": "../../../etc/passwd"}, "bad_path"),
    ("source-as-a-path", {"source": "../x"}, "bad_field"),
    ("empty-answer", {"chosen": " "}, "bad_text"),
    ("huge-question", {"question": "why " * 100_000}, "bad_text"),
    ("prompt-without-video", {"prompt": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
     "bad_prompt"),
]


@pytest.mark.parametrize(("name", "fields", "reason"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_a_bad_row_is_skipped_with_its_reason_and_the_rest_exported(hostile: Store, tmp_path: Path, name: str,
                                                                    fields: dict[str, Any], reason: str) -> None:
    tag = f"row-{name}"
    craft(hostile.store, tmp_path, tag, rows=_set(1, **fields))
    out = tmp_path / "out"
    res = export_cli(hostile, tag, out)
    assert res.exit_code == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    assert [(r["reason"]) for r in skipped(out)] == [reason]
    assert len((out / "train.jsonl").read_text(encoding="utf-8").splitlines()) == 5
    assert max(len(line) for line in res.output.splitlines()) < ROW_BOUND  # no 400 KB line


def test_a_bad_row_does_not_stop_training_and_is_counted(hostile: Store, tmp_path: Path) -> None:
    """`savi train` end to end on a revision with a 300-character file name and frame indices [-1, 10**12]
    (each aborted a whole run before, even with --max-missing-share 1.0)."""
    def change(rows: list[dict[str, Any]]) -> None:
        rows[0]["video_path"] = "v" * 300 + ".mp4"
        rows[3]["frame_indices"] = [-1, 10**12]

    craft(hostile.store, tmp_path, "rows-train", rows=change)
    out = tmp_path / "model"
    res = CliRunner().invoke(app, ["train", "-d", REPO, "-r", "rows-train", "-m", "tiny-qwen2-vl", "-o", str(out),
                                   "--store", str(hostile.store), "--max-steps", "1", "--per-device-batch-size", "2",
                                   "--max-missing-share", "1.0", "--no-merge", "--no-progress", *_roots(hostile)])
    assert res.exit_code == 0, res.output[-3000:]
    counts = json.loads((out / "train.json").read_text(encoding="utf-8"))["counts"]
    assert counts["skipped_rows"] == {"bad_frame_indices": 1, "bad_path": 1} and counts["kept_rows"] == 4


# --- revision-level files: one line, exit 2, nothing left --------------------------------------------------


FILE_CASES = [
    ("resize-not-numbers", {"build.json": "resize"}, "config.frames.resize"),
    ("resize-huge", {"build.json": [20000, 20000]}, "at most 4096"),
    ("build-json-not-json", {"build.json": b"{not json"}, "build.json is not valid JSON"),
    ("build-json-a-list", {"build.json": b"[1, 2]"}, "build.json is not a JSON object"),
    ("answer-not-utf8", {"prompts/answer.txt": b"Answer \xff\xfe ${question}"}, "not UTF-8"),
    ("answer-other-placeholder", {"prompts/answer.txt": "Answer ${secret}\n"}, "not an answer template"),
    ("answer-edited", {"prompts/answer.txt": "Answer in one word: ${question}\n"}, "but build.json recorded"),
    ("card-not-utf8", {"README.md": b"---\n\xff\n---\n"}, "README.md is not UTF-8"),
]


def _file_changes(store: Store, changes: dict[str, Any], tmp: Path) -> dict[str, bytes | str | None]:
    files: dict[str, bytes | str | None] = {}
    for rel, value in changes.items():
        if rel == "build.json" and not isinstance(value, bytes):
            from tests.helpers.hostile import revision_files

            info = json.loads((revision_files(store.store, tmp / "orig") / "build.json").read_text(encoding="utf-8"))
            info["config"].setdefault("frames", {})["resize"] = value
            files[rel] = json.dumps(info)
        else:
            files[rel] = value
    return files


@pytest.mark.parametrize(("name", "changes", "message"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_a_bad_revision_file_is_one_line_and_leaves_nothing(hostile: Store, tmp_path: Path, processor: Any,
                                                            name: str, changes: dict[str, Any], message: str) -> None:
    tag = f"file-{name}"
    craft(hostile.store, tmp_path, tag, files=_file_changes(hostile, changes, tmp_path))
    out = tmp_path / "out"
    for clips in ("cut", "frames"):
        res = export_cli(hostile, tag, out, "--clips", clips)
        assert res.exit_code == 2, res.output[-3000:]
        assert message in error_line(res.output)
        assert not out.exists()
        no_staging_left(out)
    training_data_path(hostile, tag, processor)


def test_a_template_linked_to_a_file_outside_is_never_used(hostile: Store, tmp_path: Path, processor: Any) -> None:
    """`prompts/answer.txt -> /etc/passwd` committed as a link: the template read is the link's text, which
    is refused; no reader opens /etc/passwd."""
    craft(hostile.store, tmp_path, "linked", links={"prompts/answer.txt": "/etc/passwd"})
    res = export_cli(hostile, "linked", tmp_path / "out")
    assert res.exit_code == 2
    line = error_line(res.output)
    assert "prompts/answer.txt' is a link to an absolute path" in line or "not an answer template" in line, line
    assert "root:" not in res.output
    training_data_path(hostile, "linked", processor)


def test_a_card_declaring_files_outside_the_revision_is_refused(hostile: Store, tmp_path: Path) -> None:
    from tests.helpers.hostile import revision_files

    card = (revision_files(hostile.store, tmp_path / "orig") / "README.md").read_text(encoding="utf-8")
    craft(hostile.store, tmp_path, "card-escape",
          files={"README.md": card.replace("data/train-*", "../../../../../../etc/*", 1)})
    res = export_cli(hostile, "card-escape", tmp_path / "out")
    assert res.exit_code == 2 and "outside the revision" in error_line(res.output)


def test_frames_export_with_a_huge_resize_is_refused_before_decoding(tmp_path: Path) -> None:
    """The decoder is never asked for 32 frames of 20000 x 20000 (std::bad_alloc aborted the process)."""
    from videosavi.builders.decode.errors import FramesTooLargeError
    from videosavi.builders.decode.frames import check_frame_memory, decode_at_indices
    from videosavi.builders.sources.synthetic_video import write_video

    video = tmp_path / "v.mp4"
    write_video(video, num_frames=8, fps=8, width=96, height=64, seed=1)
    with pytest.raises(FramesTooLargeError, match="at most 4096"):
        decode_at_indices(video, [0, 1], resize=(20000, 20000))
    with pytest.raises(FramesTooLargeError, match="GiB"):
        check_frame_memory(video, 4096, (4096, 4096))
    assert decode_at_indices(video, [0, 1], resize=(32, 32)).shape == (2, 32, 32, 3)


# --- hypothesis: random corruptions of random rows --------------------------------------------------------


BAD_VALUES: dict[str, list[Any]] = {
    "frame_indices": [[-1, 10**12], [], [5, 3], [2**40], list(range(5000)), [0, 0]],
    "clip_start": [math.nan, math.inf, -1.0, 1e308],
    "clip_end": [math.nan, -math.inf, 0.0],
    "video_path": ["v" * 300 + ".mp4", "../../etc/passwd", "/etc/passwd", "a\\b.mp4", "", "a//b.mp4", "x\x00y",
                   "é" * 200 + ".mp4", "a/" * 600 + "b"],
    "source": ["../x", "", "STAR", "s" * 100, "nosuchsource"],
    "video_sha256": ["", "z" * 1000, "0" * 64],
    "question": ["", "   ", "q" * 30_000],
    "chosen": ["", "c" * 300_000],
    "rejected": ["\n\t"],
    "video_num_frames": [0, -5, 2**40, 1],
    "pair_id": ["", "p" * 500],
    "prompt": [[], [{"role": "system", "content": [{"type": "text", "text": "no user turn"}]}],
               [{"role": "user", "content": [{"type": "text", "text": "no video block"}]}],
               [{"role": "user", "content": [{"type": "video", "text": None}, {"type": "video", "text": None}]}],
               [{"role": "user", "content": [{"type": "image", "text": "x"}]}],
               [{"role": "user", "content": [{"type": "video", "text": None},
                                             {"type": "text", "text": "p" * 500_000}]}]],
}


@st.composite
def corruptions(draw: st.DrawFn) -> list[tuple[int, str, Any]]:
    n = draw(st.integers(min_value=1, max_value=3))
    return [(draw(st.integers(min_value=0, max_value=5)), field, draw(st.sampled_from(BAD_VALUES[field])))
            for field in draw(st.lists(st.sampled_from(sorted(BAD_VALUES)), min_size=n, max_size=n))]


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=corruptions())
def test_random_row_corruptions_never_raise_anything_but_our_one_line_errors(
        hostile: Store, tmp_path: Path, processor: Any, changes: list[tuple[int, str, Any]]) -> None:
    tag = "fuzz-" + str(abs(hash(repr(changes))))[:12]
    work = tmp_path / tag

    def change(rows: list[dict[str, Any]]) -> None:
        for index, field, value in changes:
            rows[index][field] = value

    craft(hostile.store, work, tag, rows=change)
    out = work / "out"
    for clips in ("cut", "frames"):
        res = export_cli(hostile, tag, out, "--clips", clips, "--overwrite")
        assert res.exit_code in (0, 2), res.output[-3000:]
        if res.exit_code == 2:
            error_line(res.output)
        else:
            assert "Traceback" not in res.output
            assert all(r["reason"] for r in skipped(out))  # every row left out says why
        no_staging_left(out)
    training_data_path(hostile, tag, processor)
    evaluation_readers(hostile, tag, work)
    shutil.rmtree(work, ignore_errors=True)


def test_the_shard_is_what_the_crafting_changed(hostile: Store, tmp_path: Path) -> None:
    """The helper commits what it is given (a check on the test itself: the corruptions reach the store)."""
    import pyarrow.parquet as pq

    from tests.helpers.hostile import revision_files

    craft(hostile.store, tmp_path, "check", rows=_set(2, frame_indices=[-1, 10**12]))
    shard = pq.read_table(revision_files(hostile.store, tmp_path / "got", "check") / SHARD)
    assert shard.column("frame_indices").to_pylist()[2] == [-1, 10**12]

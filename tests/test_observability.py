"""Observability: one progress switch for every bar, `savi --log-level`, and RUN/build.log.

The build log is checked on the lossy reference build (conftest: undecodable videos skipped, reserve
videos drawn, critiques quarantined), against the build.json of the same run: a multi-day build must
be diagnosable from its log alone.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.helpers.build_helpers import small_options
from videosavi import disable_progress_bars, enable_progress_bars
from videosavi.builders.run.runner import BuildOptions, run_build
from videosavi.builders.sources.sampler import sample_videos
from videosavi.cli import app
from videosavi.errors import ConfigError
from videosavi.hub.publish import publish_run
from videosavi.hub.validate import validate_run_dir
from videosavi.logs import BUILD_LOG, LOGGER, configure_logging, event, parse_level, run_log
from videosavi.progress import ENV, progress_bar, progress_bars_enabled
from videosavi.run_dir import RunDir
from videosavi.training.args import TrainArgs
from videosavi.training.data import check_rows, prepare_training_data
from videosavi.workflows.export import ExportOptions
from videosavi.workflows.loop import default_build, default_publish

STAGES = ("question", "answer", "critique", "refine")


@pytest.fixture
def clean_logger() -> Iterator[logging.Logger]:
    """`videosavi`'s logger as it was before the test (configure_logging changes it for the process)."""
    logger = logging.getLogger(LOGGER)
    handlers, level = list(logger.handlers), logger.level
    yield logger
    for h in logger.handlers:
        if h not in handlers:
            logger.removeHandler(h)
    logger.setLevel(level)


def parse_line(line: str) -> tuple[str, str, str, dict[str, object]]:
    """(level, logger, event, fields) of one build.log line (values: JSON where they parse, else text)."""
    _time, level, logger, rest = line.split(" ", 3)
    name, _, tail = rest.partition(" ")
    fields: dict[str, object] = {}
    decoder = json.JSONDecoder()
    while tail:
        key, _, tail = tail.partition("=")
        try:
            value, end = decoder.raw_decode(tail)
        except json.JSONDecodeError:
            value, _, tail = tail.partition(" ")
            fields[key] = value
            continue
        fields[key] = value
        tail = tail[end:].lstrip(" ")
    return level, logger, name, fields


def events(path: Path) -> list[tuple[str, str, str, dict[str, object]]]:
    return [parse_line(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- progress -------------------------------------------------------------------------------------


def _drawn() -> str:
    """What one bar made by the shared factory draws on a terminal."""
    out = io.StringIO()
    bar = progress_bar(console=Console(file=out, force_terminal=True, width=80))
    with bar:
        task = bar.add_task("counting", total=3)
        bar.advance(task, 3)
    return out.getvalue()


def test_one_switch_turns_every_bar_off_and_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert progress_bars_enabled() and "counting" in _drawn()
    disable_progress_bars()
    assert not progress_bars_enabled() and _drawn() == ""
    enable_progress_bars()
    assert "counting" in _drawn()
    monkeypatch.setattr("videosavi.progress._override", None)
    for value, enabled in (("1", False), ("yes", False), ("0", True), ("false", True)):
        monkeypatch.setenv(ENV, value)
        assert progress_bars_enabled() is enabled, value
        assert ("counting" in _drawn()) is enabled, value


def test_no_progress_flag_is_left_on_the_apis_the_switch_replaces() -> None:
    for api in (BuildOptions, TrainArgs, ExportOptions, sample_videos, publish_run, validate_run_dir, check_rows,
                prepare_training_data, default_build, default_publish):
        assert "progress" not in inspect.signature(api).parameters, api


def test_cli_no_progress_is_the_switch(demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    res = CliRunner().invoke(app, ["sample", "-c", "demo", "--data-root", str(demo_root), "-o", str(tmp_path / "r"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert not progress_bars_enabled()


# --- console log ------------------------------------------------------------------------------------


def test_event_lines_quote_what_would_split_them() -> None:
    line = event("video_done", video="star/A#t=0.1,2", pairs=6, ok=True, reasons={"no_issue": 1}, note="two words",
                 empty="")
    assert line == ('video_done video="star/A#t=0.1,2" pairs=6 ok=true reasons={"no_issue":1} note="two words" '
                    'empty=""')
    assert parse_line(f"2026-01-01T00:00:00Z INFO videosavi.x {line}")[3] == {
        "video": "star/A#t=0.1,2", "pairs": 6, "ok": True, "reasons": {"no_issue": 1}, "note": "two words", "empty": ""}


def test_log_level_names_are_checked() -> None:
    assert parse_level("INFO") == logging.INFO and parse_level(None) == logging.WARNING
    with pytest.raises(ConfigError, match="debug, info, warning, error"):
        parse_level("verbose")
    res = CliRunner().invoke(app, ["--log-level", "verbose", "stats", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "unknown log level 'verbose'" in res.output


def test_cli_log_level_info_shows_what_warning_hides(demo_root: Path, tmp_path: Path,
                                                     clean_logger: logging.Logger) -> None:
    args = ["sample", "-c", "demo", "--data-root", str(demo_root), "--no-progress"]
    quiet = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "a")])
    loud = CliRunner().invoke(app, ["--log-level", "info", *args, "-o", str(tmp_path / "b")])
    assert quiet.exit_code == loud.exit_code == 0, quiet.output + loud.output
    assert "source_sampled" not in quiet.output
    assert "INFO videosavi.builders.sources.sampler source_sampled source=star quota=4 sampled=4" in loud.output
    configure_logging("warning")
    configure_logging("warning")  # again: still one console handler
    assert sum(type(h).__name__ == "_StderrHandler" for h in clean_logger.handlers) == 1


# --- RUN/build.log ------------------------------------------------------------------------------------


def test_build_log_records_stages_skips_quarantines_and_top_ups(lossy_reference: Path) -> None:
    info = RunDir(lossy_reference).read_build_info()
    found = events(lossy_reference / BUILD_LOG)
    names = [e[2] for e in found]
    assert names[0] == "build_start" and names[-1] == "build_done"
    assert {e[1] for e in found} >= {"videosavi.builders.run.runner", "videosavi.builders.generate.stage_runner",
                                     "videosavi.builders.sources.sampler"}
    stage_lines = [f for _, _, name, f in found if name == "stage"]
    assert {f["stage"] for f in stage_lines} == set(STAGES)
    for stage in STAGES:  # the per-window lines add up to build.json's stage counts
        counts = info.counts.stages[stage]
        mine = [f for f in stage_lines if f["stage"] == stage]
        assert sum(int(f["calls"]) for f in mine) == counts.calls
        assert sum(int(f["retries"]) for f in mine) == counts.retries
        assert sum(int(f["quarantined"]) for f in mine) == counts.quarantined
    skipped = [f for level, _, name, f in found if name == "video_skipped"]
    assert len(skipped) == info.counts.videos_skipped >= 2
    assert all(level == "WARNING" for level, _, name, _ in found if name in ("video_skipped", "quarantined"))
    assert {f["reason"] for f in skipped} <= set(info.counts.skip_reasons)
    quarantined = [f for _, _, name, f in found if name == "quarantined"]
    assert len(quarantined) == sum(s.quarantined for s in info.counts.stages.values()) >= 1
    assert all(f["stage"] in STAGES and f["reason"] for f in quarantined)
    done = [f for _, _, name, f in found if name == "video_done"]
    assert len(done) == info.counts.videos_done and sum(int(f["pairs"]) for f in done) >= info.counts.pairs
    top_ups = [f for _, _, name, f in found if name == "reserve_top_up"]
    used = sum(s.reserve_videos_used for s in info.counts.sources.values())
    assert sum(int(f["videos"]) for f in top_ups) >= used >= 2
    final = found[-1][3]
    assert (final["pairs"], final["videos_done"], final["videos_skipped"]) == (
        info.counts.pairs, info.counts.videos_done, info.counts.videos_skipped)


def test_a_resumed_build_appends_to_its_log(small_reference: Path, tmp_path: Path, small_config: Path,
                                            demo_root: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(small_reference, run)
    before = (run / BUILD_LOG).read_text(encoding="utf-8")
    run_build(small_options(small_config, demo_root, run))
    after = (run / BUILD_LOG).read_text(encoding="utf-8")
    assert after.startswith(before)
    resumed = events(run / BUILD_LOG)[len(before.splitlines()):]
    names = [e[2] for e in resumed]
    assert names[0] == "build_start" and names[-1] == "build_done"
    videos = next(f for _, _, name, f in resumed if name == "videos")
    assert videos["todo"] == 0 and videos["done_before"] == videos["selected"]
    assert "video_done" not in names  # nothing redone


def test_run_log_nested_on_one_file_writes_each_line_once(tmp_path: Path) -> None:
    log = logging.getLogger("videosavi.test")
    with run_log(tmp_path), run_log(tmp_path):
        log.info(event("once"))
    log.info(event("after"))  # the file handler is gone with the block
    assert (tmp_path / BUILD_LOG).read_text(encoding="utf-8").count("once") == 1
    assert "after" not in (tmp_path / BUILD_LOG).read_text(encoding="utf-8")

"""The README's first command, `make demo` (= `savi demo`), end to end: every step a user sees, on the
embedded defaults (demo videos, the tiny model, a local store behind the real hub server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videosavi.workflows.demo import run_demo


@pytest.mark.slow(seconds=42)
def test_demo_runs_every_step_and_each_gives_what_the_readme_shows(tmp_path: Path, videosavi_cache: str) -> None:
    work = tmp_path / "demo"
    summary = run_demo(work)
    assert summary["iter1_pairs"] == summary["iter2_pairs"] == 48  # exactly quota x 6 per source
    assert summary["iter1_loaded_rows"] == summary["iter1_streamed_rows"] == 48
    assert "iter9" in str(summary["wrong_revision_error"])
    assert summary["swift_rows"] == 48
    rows = [json.loads(line) for line in Path(str(summary["swift_export"])).read_text().splitlines()]
    assert all(Path(v).is_absolute() and Path(v).is_file() for r in rows for v in r["videos"])
    table = json.loads((work / "eval" / "table" / "table.json").read_text())
    assert table["table"]["labels"] == ["iter1", "iter2"]
    assert (work / "iter1-model" / "adapter" / "plots" / "dpo_dynamics.png").is_file()
    assert Path(str(summary["humaneval_csv"])).is_file()

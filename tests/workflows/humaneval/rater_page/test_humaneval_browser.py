"""The rater page in a real browser: Playwright drives Debian's Chromium (headless) through the
paper's protocol with the keyboard only, reloads mid-item, finishes, and the sheet it wrote scores
to the figures worked out by hand (tests/helpers/rater_fixtures.py).

Chromium comes from Debian (`apt-get install -y chromium`; `.ci/run` installs it): Playwright's own
browser download cannot run here. Set VIDEOSAVI_SCREENSHOTS=DIR to save the screenshots that
docs/curation.md shows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.rater_fixtures import EXPECTED, figures, make_eval, ratings_for
from videosavi.workflows.humaneval import score_sheets
from videosavi.workflows.humaneval.rater_page import RaterServer, ServeOptions

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEY_OF = {("question_answerable", "yes"): "y", ("question_answerable", "no"): "n",
          ("answer_A_verdict", "accurate"): "1", ("answer_A_verdict", "clear errors"): "2",
          ("answer_A_verdict", "neither"): "3", ("answer_B_verdict", "accurate"): "4",
          ("answer_B_verdict", "clear errors"): "5", ("answer_B_verdict", "neither"): "6",
          ("better_answer", "A"): "a", ("better_answer", "B"): "b"}
ORDER = ("question_answerable", "answer_A_verdict", "answer_B_verdict", "better_answer")

pytestmark = pytest.mark.slow


@pytest.fixture
def browser_page() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (it is in the dev extra: make install)")
    if not CHROMIUM.is_file():
        pytest.skip("Chromium is not installed at /usr/bin/chromium: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="videosavi-chromium-") as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                       args=FLAGS, viewport={"width": 1280, "height": 860})
        try:
            yield context.new_page()
        finally:
            context.close()


def _press(page: Any, key: str) -> None:
    """A key that saves an answer: wait until the page says the server has it."""
    page.keyboard.press(key)
    page.wait_for_function("document.getElementById('saved').textContent === 'saved ✓'")


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("VIDEOSAVI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def _item_shown(page: Any, index: int, total: int) -> None:
    page.wait_for_function(f"document.getElementById('position').textContent === 'item {index + 1} of {total}'")


def test_rate_in_chromium_with_the_keyboard(tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    files = make_eval(tmp_path)
    answers = ratings_for(files.key_rows)
    with RaterServer(ServeOptions(sheet=files.sheet, rater="alice", roots=files.roots, port=0)) as srv:
        assert srv.page is not None
        videos = [item.video for item in srv.page.rated.items]
        page.goto(srv.url)
        _item_shown(page, 0, 4)
        assert page.text_content("#progress-text") == "0 of 4 rated"
        body = page.text_content("body") or ""
        for secret in ("chosen", "rejected", "spatial", "temporal", "pair_id"):
            assert secret not in body
        for i, given in enumerate(answers):
            if i:
                page.keyboard.press("Enter")
                _item_shown(page, i, 4)
            name = videos[i]
            if name == "star/v1.mp4":  # H.264 with a clip span 0.5-1.5 s: it plays only that span
                page.wait_for_function("document.getElementById('video').readyState >= 1")
                page.wait_for_function("Math.abs(document.getElementById('video').currentTime - 0.5) < 0.1")
                page.keyboard.press(" ")
                page.wait_for_function("document.getElementById('video').currentTime > 0.7")
                page.wait_for_function("document.getElementById('video').paused", timeout=10_000)
                assert abs(page.evaluate("document.getElementById('video').currentTime") - 0.5) < 0.1
            elif name == "star/v3.mp4":  # MPEG-4 Part 2: Chromium cannot play it, the page shows frames
                page.wait_for_function("document.getElementById('frame').naturalWidth > 0")
                assert page.is_hidden("#video")
                assert "cannot play this video's format" in (page.text_content("#frame-info") or "")
                _shot(page, "rater-page-frames.png")
            elif name == "star/v4.mp4":  # missing: said on the page, and the item can still be rated
                assert "v4.mp4 is missing" in (page.text_content("#video-message") or "")
            keys = [KEY_OF[(f, given[f])] for f in ORDER if f in given]
            if i == 1:  # half-way through the second item a comment is typed and the page reloaded at once
                _press(page, keys[0])
                page.keyboard.press("c")
                page.keyboard.type("the cup is hard to see")
                page.reload()  # the comment was never saved as typed: the closing page sends it
                deadline = time.monotonic() + 10
                while "the cup is hard to see" not in srv.out.read_text(encoding="utf-8"):
                    assert time.monotonic() < deadline, "the comment typed before the reload was lost"
                    time.sleep(0.1)
                page.reload()
                _item_shown(page, 1, 4)  # resumed at the first item not fully rated
                assert page.input_value("#comment") == "the cup is hard to see"
                assert page.get_attribute("[data-field=question_answerable] button.on", "data-value") == "yes"
                assert page.text_content("#progress-text") == "1 of 4 rated"
                keys = keys[1:]
            for key in keys:
                _press(page, key)
            page.wait_for_function("document.getElementById('complete').textContent.includes('rated')")
            if name == "star/v1.mp4":
                _shot(page, "rater-page.png")
        assert page.text_content("#progress-text") == "4 of 4 rated"
        page.keyboard.press("Enter")
        page.wait_for_selector("#done-screen", state="visible")
        _shot(page, "rater-page-done.png")
        out = srv.out
    report = score_sheets([out], files.key)
    assert report.raters[0].rater == "alice"
    assert figures(report) == EXPECTED
    assert "the cup is hard to see" in out.read_text(encoding="utf-8")
    if os.environ.get("VIDEOSAVI_SCREENSHOTS"):
        shutil.copy(out, Path(os.environ["VIDEOSAVI_SCREENSHOTS"]) / "rater-sheet-example.csv")

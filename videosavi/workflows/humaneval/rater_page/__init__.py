"""The rater page (`savi humaneval serve`): the paper's human evaluation in a browser, one item at a
time, every answer saved to the rater sheet `savi humaneval score` reads."""

from __future__ import annotations

from videosavi.workflows.humaneval.rater_page.server import RaterServer, ServeOptions

__all__ = ["RaterServer", "ServeOptions"]

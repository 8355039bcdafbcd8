"""Reading a published revision for `savi stats` and `savi humaneval export` (run dirs: `pairs_frame`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from videosavi.curation.stats import pairs_frame
from videosavi.formats.published_rows import record_columns
from videosavi.hub.load import load_revision


def load_revision_frame(
    repo: str, revision: str, store: Path | None = None, endpoint: str | None = None
) -> pl.DataFrame:
    """A published revision through `videosavi.load_revision` (it resolves the tag to a commit first
    and refuses a missing one, so a stale cached revision is never summarised by mistake)."""
    return pairs_frame(record_columns(load_revision(repo, revision, store=store, endpoint=endpoint)))

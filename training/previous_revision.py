"""The previous iteration's video descriptions from a published revision, for a retrospective build.

`savi-build --previous ORG/NAME@REV` reads them here, through `open_revision` (the revision is
resolved to a commit sha first, like training does), and hands the mapping to the builder, which
cannot read the hub itself (builders sit below the hub layer). A run directory needs none of this:
the builder reads its rows directly (builders/run/retrospective.py).
"""

from __future__ import annotations

from pathlib import Path

from videosavi.builders.run.retrospective import PreviousContext, check_previous, descriptions_from_rows
from videosavi.errors import ConfigError
from videosavi.training.data import refuse_bad_rows, rows_of


def parse_repo_revision(spec: str) -> tuple[str, str]:
    """`ORG/NAME@REV` -> (repo, revision)."""
    repo, _, revision = spec.rpartition("@")
    if not repo or not revision or repo.count("/") != 1:
        raise ConfigError(f"--previous {spec!r}: expected a run directory or ORG/NAME@REV (e.g. org/videosavi@iter1)")
    return repo, revision


def previous_from_revision(spec: str, *, store: str | Path | None = None,
                           endpoint: str | None = None) -> PreviousContext:
    """The descriptions stored in the rows of `ORG/NAME@REV`, labelled with the commit they came from."""
    from videosavi.training.revision import open_revision

    repo, revision = parse_repo_revision(spec)
    rev = open_revision(repo, revision, store=store, endpoint=endpoint)
    rows = (rows_of(rev.dataset.select_columns(["video_uid", "description"]))
            if "description" in rev.dataset.column_names else [])
    rows = [row for row, bad in zip(rows, refuse_bad_rows(rows), strict=True) if bad is None]  # bounded texts only
    name, iteration = rev.build_info.get("name"), rev.build_info.get("iteration")
    return check_previous(PreviousContext(label=f"{repo}@{revision} ({rev.sha[:12]})",
                                          descriptions=descriptions_from_rows(rows),
                                          name=name if isinstance(name, str) else None,
                                          iteration=iteration if isinstance(iteration, int) else None))

"""ISR-DPO's self-retrospective context: the previous iteration's descriptions, by video.

In a build with `retrospective: true` the model first describes each video; from iteration 2 on it
is shown the description it wrote of the same video in the previous iteration and asked to revise it
(ISR-DPO: c_t ~ pi_t(V, c_{t-1})). Descriptions travel in the rows (`PreferencePair.description`), so
the previous iteration's are read back from its rows, keyed by `video_uid`: from a run directory
here, or from a published revision by the caller (`savi-build --previous ORG/NAME@REV`, which reads
it through training/revision.py and hands the mapping in). A video the previous iteration kept no
pair of has no description there and is described afresh (counted in build.json).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosavi.errors import ConfigError
from videosavi.hashing import stable_hash


@dataclass(frozen=True)
class PreviousContext:
    """The previous iteration's descriptions (`video_uid -> text`) and a label saying where they came from."""

    label: str
    descriptions: dict[str, str] = field(default_factory=dict)
    # what the previous data says of itself (its build.json), when known: checked against this build
    name: str | None = None
    iteration: int | None = None

    @property
    def fingerprint(self) -> str:
        """Content hash: what the run directory's guard compares (the same data under another path is the same)."""
        return stable_hash(sorted(self.descriptions.items()))


def descriptions_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The first non-empty description of each video (all rows of a video carry the same one)."""
    out: dict[str, str] = {}
    for row in rows:
        text = row.get("description")
        if text and row["video_uid"] not in out:
            out[row["video_uid"]] = str(text)
    return out


def previous_from_run_dir(path: str | Path) -> PreviousContext:
    """The descriptions in a finished run directory's rows."""
    from videosavi.run_dir import RunDir

    run = RunDir(Path(path))
    if not run.build_json.exists():
        raise ConfigError(f"--previous {path}: not a finished run directory (no build.json)")
    table = run.read_pairs_table().select(["video_uid", "description"])
    # the label is published in build.json and the card: the folder's name, never the local path above it
    info = run.read_build_info()
    label = f"run directory {run.path.resolve().name} (iteration {info.iteration})"
    return PreviousContext(label=label, descriptions=descriptions_from_rows(table.to_pylist()), name=info.name,
                           iteration=info.iteration)


def check_previous_matches(previous: PreviousContext, *, name: str, iteration: int) -> PreviousContext:
    """The previous data must be iteration N-1 of the same dataset (config `name`): another dataset's or
    another iteration's descriptions would match few videos, and those few would be revised from the
    wrong text without a word."""
    if previous.name is not None and previous.name != name:
        raise ConfigError(f"--previous {previous.label} is dataset {previous.name!r}, but this build makes "
                          f"{name!r}: give iteration {iteration - 1} of the same dataset")
    if previous.iteration is not None and previous.iteration != iteration - 1:
        raise ConfigError(f"--previous {previous.label} is iteration {previous.iteration}, but iteration {iteration} "
                          f"revises iteration {iteration - 1}'s descriptions: give that one")
    return previous


MIN_MATCHED_SHARE = 0.5


def matched_share_warning(previous: PreviousContext, video_uids: Iterable[str]) -> str | None:
    """A warning when fewer than half of this build's videos have a previous description (pure)."""
    uids = list(video_uids)
    matched = sum(1 for uid in uids if uid in previous.descriptions)
    if not uids or matched >= MIN_MATCHED_SHARE * len(uids):
        return None
    return (f"only {matched} of {len(uids)} videos of this build have a description in --previous "
            f"{previous.label}: the others are described afresh. Is it the previous iteration of this dataset, "
            "built from the same sample?")


def check_previous(previous: PreviousContext) -> PreviousContext:
    """Refuse previous data that describes no video: it was not built with `retrospective: true`, so
    every video would silently be described afresh (ISR-DPO's 'renew' context, not its retrospective one)."""
    if not previous.descriptions:
        raise ConfigError(f"--previous {previous.label} holds no video descriptions: was it built with "
                          "retrospective: true? (Leave --previous out only in iteration 1.)")
    return previous


def resolve_previous(*, retrospective: bool, iteration: int, previous: str | None,
                     descriptions: Mapping[str, str] | None, name: str | None = None,
                     origin: Mapping[str, Any] | None = None) -> PreviousContext | None:
    """The previous context a build runs with, from `BuildOptions.previous` (a run directory, or the
    label of `descriptions` a caller read from a published revision); None in iteration 1."""
    if previous is None and descriptions is None:
        if retrospective and iteration > 1:
            raise ConfigError(f"retrospective: true in iteration {iteration} needs the previous iteration's data: "
                              "--previous RUN_DIR or --previous ORG/NAME@REV (its rows hold the descriptions)")
        return None
    if not retrospective:
        raise ConfigError("--previous is read by retrospective builds only; set retrospective: true in the config, "
                          "or drop --previous")
    if descriptions is not None:
        given = origin or {}
        ctx = PreviousContext(previous or "given descriptions", dict(descriptions), name=given.get("name"),
                              iteration=given.get("iteration"))
    else:
        assert previous is not None
        if not Path(previous).is_dir():
            raise ConfigError(f"--previous {previous}: no such run directory (a published revision is given as "
                              "ORG/NAME@REV to savi-build)")
        ctx = previous_from_run_dir(previous)
    check_previous(ctx)
    return check_previous_matches(ctx, name=name, iteration=iteration) if name is not None else ctx

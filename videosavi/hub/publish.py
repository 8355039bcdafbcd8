"""Publish a finished run directory as ONE commit tagged `iterN` (the store or the Hub).

Order matters: validate everything, render the card and plots, assemble the exact file set in a
staging folder, and only then touch the repository. The backend decides by content (a re-publish of
the same files is a no-op; changed files under an existing tag are refused without `force`) and
makes the commit and the tag. `savi publish`, `savi-build --dataset` and `savi demo` all call
`publish_run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq

from videosavi.cards.stats import CardStats, card_stats
from videosavi.curation.stats import STATS_COLUMNS
from videosavi.errors import PublishError
from videosavi.hub.names import check_tag, iteration_tag, split_repo_id
from videosavi.hub.plan import PublishBackend
from videosavi.hub.revision_files import assemble_revision
from videosavi.hub.run_trust import incomplete_reasons
from videosavi.hub.validate import ValidatedRun, validate_run_dir
from videosavi.hub_location import HubLocation
from videosavi.locking import exclusive
from videosavi.progress import status_console
from videosavi.tmp_dirs import owned_tmpdir

log = logging.getLogger(__name__)
DATA_PATTERN = "data/train-*.parquet"


@dataclass(frozen=True)
class PublishResult:
    repo: str
    tag: str
    commit_sha: str
    noop: bool
    url_or_path: str


def make_backend(backend: Literal["store", "hub"] | PublishBackend, *, store: str | Path | None = None,
                 token: str | None = None) -> PublishBackend:
    """"store" (the local git store), "hub" (HfApi), or a ready backend object (tests inject one)."""
    if backend == "store":
        from videosavi.hub.store import GitStore

        return GitStore(store)
    if backend == "hub":
        HubLocation(store=Path(store) if store is not None else None, hub=True, role="publish")  # refuses a store
        from videosavi.hub.hf_backend import HubBackend

        return HubBackend(token=token)
    if isinstance(backend, str):
        raise PublishError(f"unknown backend {backend!r} (use 'store' or 'hub')")
    return backend


def tag_stats(backend: PublishBackend, repo: str, tag: str, workdir: Path) -> CardStats | None:
    """Statistics of one earlier tag of the repository (None if it is absent or unreadable)."""
    files = backend.fetch(repo, tag, workdir / tag, [DATA_PATTERN])
    shards = sorted(p for p in files if p.suffix == ".parquet")
    if not shards:
        return None
    try:
        import pyarrow as pa

        table = pa.concat_tables([pq.read_table(p, columns=list(STATS_COLUMNS)) for p in shards])
        return card_stats(table)
    except Exception as exc:  # an older layout must not block publishing; the card just has no comparison
        log.warning("cannot compare with %s@%s: %s", repo, tag, exc)
        return None


def earlier_stats(backend: PublishBackend, repo: str, iteration: int, workdir: Path) -> dict[str, CardStats]:
    """Statistics of every earlier iteration's tag that exists (oldest first), for the card's trend."""
    found = {}
    for i in range(1, iteration):
        stats = tag_stats(backend, repo, iteration_tag(i), workdir)
        if stats is not None:
            found[iteration_tag(i)] = stats
    return found


def _messages(run: ValidatedRun, tag: str) -> tuple[str, str]:
    info = run.info
    n_videos = len(set(run.table.column("video_uid").to_pylist()))
    message = (f"{info.name} {tag}: {info.counts.pairs} pairs from {n_videos} videos\n\n"
               f"model {info.model.name_or_path} @ {info.model.revision}, {info.builder_version}, "
               f"prompts {info.prompt_version}, seed {info.seed}")
    tag_message = f"{info.name} iteration {info.iteration} ({info.counts.pairs} pairs)"
    return message, tag_message


def check_no_gap(backend: PublishBackend, repo: str, iteration: int, tag: str, allow_gap: bool) -> None:
    """Refuse `iterN` while `iter(N-1)` is missing from the repository (a skipped or mistyped
    iteration would leave main's history, the card's trend and `savi train`'s lineage with a hole);
    `allow_gap` publishes anyway. Custom tags are not iterations and are not checked."""
    if allow_gap or iteration <= 1 or tag != iteration_tag(iteration):
        return
    tags = getattr(backend, "tags", None)
    if tags is None:  # an injected backend without tag listing
        return
    previous = iteration_tag(iteration - 1)
    found = tags(repo)
    if previous not in found:
        have = ", ".join(sorted(t for t in found if t.startswith("iter"))) or "none"
        raise PublishError(
            f"{repo} has no {previous} (iteration tags: {have}), so {tag} would leave a gap: publish {previous} "
            "first, or pass --allow-gap"
        )


def publish_run(run_dir: str | Path, repo: str, *, backend: Literal["store", "hub"] | PublishBackend = "store",
                store: str | Path | None = None, tag: str | None = None, force: bool = False,
                token: str | None = None, allow_gap: bool = False) -> PublishResult:
    """Validate `run_dir`, render its card and plots, and publish it as one commit tagged `tag`
    (default `iterN` from build.json). Raises `PublishError` (nothing changed) on bad input or refusal.

    The run directory is locked while it is read (a build still writing it is refused), and
    `iterN` needs `iter(N-1)` in the repository unless `allow_gap`."""
    split_repo_id(repo)
    if not Path(run_dir).is_dir():
        raise PublishError(f"{run_dir} is not a run directory (no such folder)")
    with exclusive(run_dir, "savi publish", read_only_ok=True):
        return _publish_locked(run_dir, repo, backend=backend, store=store, tag=tag, force=force, token=token,
                               allow_gap=allow_gap)


def _publish_locked(run_dir: str | Path, repo: str, *, backend: Literal["store", "hub"] | PublishBackend,
                    store: str | Path | None, tag: str | None, force: bool, token: str | None,
                    allow_gap: bool) -> PublishResult:
    console = status_console()
    run = validate_run_dir(run_dir)
    incomplete = incomplete_reasons(run.info, Path(run_dir))
    if incomplete:
        raise PublishError(f"{run_dir} is not a complete build, so it is not published: " + "; ".join(incomplete))
    tag = check_tag(tag or iteration_tag(run.info.iteration))
    be = make_backend(backend, store=store, token=token)
    check_no_gap(be, repo, run.info.iteration, tag, allow_gap)
    with owned_tmpdir("stage") as tmp:
        with console.status(f"rendering the card of {repo}@{tag}"):
            history = earlier_stats(be, repo, run.info.iteration, Path(tmp) / "earlier")
            previous_tag = iteration_tag(run.info.iteration - 1) if run.info.iteration > 1 else None
            previous = history.get(previous_tag) if previous_tag else None
            staging = Path(tmp) / "files"
            assemble_revision(run, staging, repo=repo, tag=tag, previous=previous,
                              previous_tag=previous_tag if previous is not None else None, history=history)
        message, tag_message = _messages(run, tag)
        with console.status(f"publishing {repo}@{tag} to {be.location(repo)}"):
            outcome = be.publish(repo, tag, staging, force=force, message=message, tag_message=tag_message)
    return PublishResult(repo=repo, tag=tag, commit_sha=outcome.commit_sha, noop=outcome.noop,
                         url_or_path=be.location(repo))

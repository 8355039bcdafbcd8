"""Seeded, stratified sampling of available videos: the same manifests + seed give the same sample,
in the same order, on any machine.

Per source, every usable candidate gets the key sha256(seed, source, video_uid); candidates are walked
in key order (ties impossible: uids are unique) and each file is stat'ed until the source's quota of
available videos is met, so only as many files are touched as needed and only available videos are
drawn. Nothing depends on Python's `hash()`, on dict/set order or on the order of manifest rows, and
adding rows to a manifest only inserts them into the order: the rest of the sample stays put.

Unavailable videos met along the way stay in the result (available=False, with the reason); a source
with fewer available videos than its quota is reported as a shortfall and logged, never fatal.

A config with `eval: {holdout: x}` reserves a share of every source for `savi eval`
(`builders/sources/holdout.py`): those candidates are removed before the walk, so no build ever draws them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import ValidationError

from videosavi.builders.decode.errors import DecodeError
from videosavi.builders.decode.frames import check_file
from videosavi.builders.decode.source_files import hash_source, source_path
from videosavi.builders.sources import PROBLEM, collect, read_source
from videosavi.builders.sources.holdout import is_held_out
from videosavi.builders.version import SAMPLER_VERSION
from videosavi.config import BuildConfig, EvalConfig, SourceConfig
from videosavi.logs import event
from videosavi.progress import progress_bar
from videosavi.schemas import VideoRef
from videosavi.schemas.video import make_video_uid

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger(__name__)

_KEY_BATCH = 200_000
_HASH_THREADS = 4  # hashlib releases the GIL: a few threads keep a disk busy
_EXAMPLES = 5


@dataclass(frozen=True)
class RejectedRow:
    """A manifest row that cannot become a `VideoRef` (empty id, bad clip times, unsafe path, ...)."""

    source: str
    video_id: str | None
    problem: str


@dataclass(frozen=True)
class SourceSample:
    """How one source's quota was met."""

    source: str
    quota: int
    candidates: int  # distinct usable videos/clips in the manifest
    sampled: int  # available videos drawn
    unavailable: int  # listed videos met on the walk whose file is missing/empty/unreadable
    rejected: int  # manifest rows that cannot be a video
    unavailable_reasons: dict[str, int] = field(default_factory=dict)
    held_out: int = 0  # candidates reserved for evaluation (config `eval.holdout`), never drawn here

    @property
    def shortfall(self) -> int:
        return max(0, self.quota - self.sampled)


@dataclass
class SampleResult:
    """The sample in output order (sources in config order, then sampling order) and how it went."""

    videos: list[VideoRef]
    sources: list[SourceSample]
    rejected_examples: list[RejectedRow]
    seed: int
    sampler_version: str = SAMPLER_VERSION

    @property
    def available(self) -> list[VideoRef]:
        return [v for v in self.videos if v.available]

    @property
    def shortfalls(self) -> dict[str, int]:
        """Source -> how many videos short of its quota (only sources that fell short)."""
        return {s.source: s.shortfall for s in self.sources if s.shortfall}


def sample_key(cfg: BuildConfig) -> str:
    """What determines the sample: sources (manifests, roots, patterns, quotas), seed, algorithm, and
    the eval holdout when there is one (a config without it keeps the key it always had)."""
    from videosavi.hashing import stable_hash

    sources = {name: src.key_dump() for name, src in cfg.sources.items()}
    key: dict[str, Any] = {"sources": sources, "seed": cfg.seed, "sampler": SAMPLER_VERSION}
    if cfg.eval is not None:
        key["holdout"] = cfg.eval.model_dump(mode="json")
    return stable_hash(key)


def rank_key(seed: int, source: str, video_uid: str) -> int:
    """The sampling order of one candidate: the first 8 bytes of sha256(seed, source, uid)."""
    digest = hashlib.sha256(f"{seed}\x1f{source}\x1f{video_uid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def file_status(root: Path, rel: str, follow_symlinks: bool = False) -> str | None:
    """None if `rel` under `root` can be sampled, else the stable reason code (missing_file, empty_file,
    outside_root, ...): the path is resolved and held to the root first (`source_files`)."""
    try:
        check_file(source_path(root, rel, follow_symlinks=follow_symlinks))
    except DecodeError as exc:
        return exc.reason
    return None


def rank_candidates(frame: pl.DataFrame, seed: int, source: str) -> pl.DataFrame:
    """Usable candidates with their uid, deduplicated by uid, sorted by rank key (then uid).

    The uid comes from `make_video_uid` (the schema's own definition), computed slice by slice so only
    one slice of Python strings exists at a time; the columns themselves live in polars.
    """
    uid_parts: list[pl.Series] = []
    key_parts: list[pl.Series] = []
    for part in frame.select("video_id", "clip_start", "clip_end").iter_slices(_KEY_BATCH):
        uids = [make_video_uid(source, vid, start, end) for vid, start, end in part.iter_rows()]
        uid_parts.append(pl.Series("uid", uids, dtype=pl.String))
        key_parts.append(pl.Series("rank", [rank_key(seed, source, u) for u in uids], dtype=pl.UInt64))
    if not uid_parts:
        return frame.with_columns(pl.lit(None, pl.String).alias("uid"), pl.lit(None, pl.UInt64).alias("rank"))
    ranked = frame.with_columns(pl.concat(uid_parts), pl.concat(key_parts))
    ranked = ranked.unique(subset=["uid"], keep="first", maintain_order=True)
    return ranked.sort(["rank", "uid"])


def drop_held_out(ranked: pl.DataFrame, source: str, holdout: EvalConfig | None) -> pl.DataFrame:
    """Ranked candidates without those reserved for evaluation (all of them when there is no rule).

    Slice by slice, like `rank_candidates`, so a 10M-row manifest never becomes 10M Python strings."""
    if holdout is None or ranked.is_empty():
        return ranked
    keep = [pl.Series([not is_held_out(holdout, source, uid) for uid in part["uid"].to_list()], dtype=pl.Boolean)
            for part in ranked.select("uid").iter_slices(_KEY_BATCH)]
    return ranked.filter(pl.concat(keep))


def sample_source(name: str, src: SourceConfig, data_root: Path, seed: int, *, hash_files: bool = True,
                  on_hashed: Callable[[int], None] | None = None, want: int | None = None,
                  skip: frozenset[str] = frozenset(),
                  holdout: EvalConfig | None = None) -> tuple[list[VideoRef], SourceSample, list[RejectedRow]]:
    """Walk one source's candidates in rank order until `want` (default `src.quota`) available videos
    are found, skipping the candidates `holdout` reserves for evaluation and passing over the uids in
    `skip` (videos an earlier walk already met: the reserve continues the same order where the first
    draw stopped)."""
    want = src.quota if want is None else want
    lazy = read_source(name, src, data_root).with_row_index("_row")
    what = f"the manifest of source {name!r}"
    frame = collect(lazy.drop("caption"), what)
    bad = frame.filter(pl.col(PROBLEM).is_not_null())
    rejected = [RejectedRow(name, r["video_id"], r[PROBLEM]) for r in bad.head(_EXAMPLES).iter_rows(named=True)]
    n_rejected = bad.height
    usable = rank_candidates(frame.filter(pl.col(PROBLEM).is_null()), seed, name)
    ranked = drop_held_out(usable, name, holdout)
    held_out = usable.height - ranked.height
    if skip:
        ranked = ranked.filter(~pl.col("uid").is_in(list(skip)))
    root = data_root / src.root

    picked: list[tuple[int, int, VideoRef]] = []  # (walk position, manifest row, video): available ones
    unavailable: list[tuple[int, int, VideoRef]] = []
    reasons: dict[str, int] = {}
    rows = ranked.iter_rows(named=True)
    walk = 0
    while len(picked) < want:
        batch: list[tuple[int, int, VideoRef]] = []
        for r in rows:
            walk += 1
            try:
                video = VideoRef(source=name, video_id=r["video_id"], video_path=r["video_path"],
                                 clip_start=r["clip_start"], clip_end=r["clip_end"])
            except ValidationError as exc:
                n_rejected += 1
                if len(rejected) < _EXAMPLES:
                    rejected.append(RejectedRow(name, r["video_id"], _first_error(exc)))
                continue
            reason = file_status(root, video.video_path, src.follow_symlinks)
            if reason:
                reasons[reason] = reasons.get(reason, 0) + 1
                unavailable.append((walk, r["_row"], _unavailable(video, reason)))
                continue
            batch.append((walk, r["_row"], video))
            if len(picked) + len(batch) >= want:
                break
        if not batch:
            break  # candidates exhausted
        digests = _hash_all(root, [v.video_path for _, _, v in batch], src.follow_symlinks, hash_files, on_hashed)
        for (pos, row, video), digest in zip(batch, digests, strict=True):
            if isinstance(digest, Exception):  # vanished, unreadable or relinked between the stat and the read
                reason = digest.reason if isinstance(digest, DecodeError) else "unreadable"
                reasons[reason] = reasons.get(reason, 0) + 1
                unavailable.append((pos, row, _unavailable(video, reason)))
            else:
                picked.append((pos, row, video.model_copy(update={"sha256": digest})))
    found = _with_captions(lazy, picked + unavailable, what)
    videos = [v for _, _, v in sorted(found, key=lambda t: t[0])]
    summary = SourceSample(source=name, quota=want, candidates=ranked.height, sampled=len(picked),
                           unavailable=len(unavailable), rejected=n_rejected, unavailable_reasons=reasons,
                           held_out=held_out)
    return videos, summary, rejected


def _unavailable(video: VideoRef, reason: str) -> VideoRef:
    return video.model_copy(update={"available": False, "unavailable_reason": reason})


def _hash_all(root: Path, rels: list[str], follow_symlinks: bool, hash_files: bool,
              on_hashed: Callable[[int], None] | None) -> list[Any]:
    if not hash_files:
        return [None] * len(rels)

    def one(rel: str) -> str | OSError | DecodeError:
        try:
            return hash_source(root, rel, follow_symlinks=follow_symlinks)
        except (OSError, DecodeError) as exc:
            return exc
        finally:
            if on_hashed:
                on_hashed(1)

    with ThreadPoolExecutor(max_workers=min(_HASH_THREADS, len(rels))) as pool:
        return list(pool.map(one, rels))


def _with_captions(lazy: pl.LazyFrame, found: list[tuple[int, int, VideoRef]],
                   what: str) -> list[tuple[int, int, VideoRef]]:
    """Fetch captions for the walked rows only (WebVid's 10M captions would not fit comfortably)."""
    if not found:
        return found
    at = {row: i for i, (_, row, _) in enumerate(found)}
    caps = collect(lazy.filter(pl.col("_row").is_in(list(at))).select("_row", "caption"), what)
    out = list(found)
    for row, caption in caps.iter_rows():
        pos, _, video = out[at[row]]
        out[at[row]] = (pos, row, video.model_copy(update={"caption": caption}))
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))


def sample_videos(cfg: BuildConfig, data_root: Path, *, hash_files: bool = True) -> SampleResult:
    """Sample every configured source; see the module docstring for the guarantees."""
    data_root = Path(data_root)
    videos: list[VideoRef] = []
    summaries: list[SourceSample] = []
    rejected: list[RejectedRow] = []
    with _progress() as bar:
        for name, src in cfg.sources.items():
            task = bar.add_task(f"sampling {name}", total=src.quota if hash_files else None)

            def hashed(n: int, task: TaskID = task) -> None:
                bar.advance(task, n)

            vids, summary, bad = sample_source(name, src, data_root, cfg.seed, hash_files=hash_files,
                                               on_hashed=hashed, holdout=cfg.eval)
            bar.update(task, completed=summary.sampled, total=max(summary.sampled, 1))
            videos += vids
            summaries.append(summary)
            rejected += bad
            log.info(event("source_sampled", source=name, quota=summary.quota, sampled=summary.sampled,
                           unavailable=summary.unavailable, rejected_rows=summary.rejected))
            if summary.shortfall:
                log.warning(event("source_shortfall", source=name, quota=summary.quota, sampled=summary.sampled,
                                  shortfall=summary.shortfall, unavailable=summary.unavailable))
            if summary.rejected:
                log.warning(event("manifest_rows_rejected", source=name, rows=summary.rejected,
                                  example=bad[0].problem if bad else "?"))
    return SampleResult(videos=videos, sources=summaries, rejected_examples=rejected, seed=cfg.seed)


def extend_sample(cfg: BuildConfig, data_root: Path, existing: list[VideoRef],
                  request: dict[str, int]) -> list[VideoRef]:
    """The next videos of each requested source's seeded order after those already in `existing`
    (`request[source]` more available ones, plus the unavailable ones met on the way), to append to
    the sample. A source whose manifest has run out returns fewer, or none."""
    out: list[VideoRef] = []
    for name, src in cfg.sources.items():
        n = request.get(name, 0)
        if n <= 0:
            continue
        walked = frozenset(v.video_uid for v in existing if v.source == name)
        videos, summary, _ = sample_source(name, src, Path(data_root), cfg.seed, want=n, skip=walked,
                                           holdout=cfg.eval)
        if summary.shortfall:
            log.warning(event("reserve_ran_out", source=name, found=summary.sampled, wanted=n))
        out += videos
    return out


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        transient=True)

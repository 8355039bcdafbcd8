"""Rows of a revision -> the video files they were made from, checked and counted before any step.

Each row names a source and a path relative to that source's root; the user's roots turn it into a
file. Before the model is even loaded every distinct file is checked once: it must exist and hash
to the row's `video_sha256` (the bytes the builder decoded). A row that fails is skipped and counted
by reason; if the skipped share exceeds `max_missing_share` we stop with a `TrainingDataError`, so a
wrong root or a half-synced disk never turns into a silently smaller (or biased) training set.

Frames are NOT decoded here. A matching hash means the builder already decoded these exact bytes at
these indices, so decoding again up front would double the decode cost for nothing; the collator
decodes each batch's frames lazily in the data-loader workers (flat memory: 24K pairs x 32 frames
held at once would be tens of GB). Only files used despite a hash mismatch (`allow_sha_mismatch`),
or every file with `verify_decode`, are trial-decoded here, because for those nothing vouches that
the stored indices can be read.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from videosavi.builders.decode.errors import DecodeError
from videosavi.builders.decode.source_files import source_path
from videosavi.errors import TrainingDataError
from videosavi.progress import progress_bar
from videosavi.schemas.paths import check_relative_posix_path
from videosavi.schemas.read_row import row_problem
from videosavi.training.subset import Selection, select_pairs
from videosavi.training_options import DEFAULT_MAX_MISSING_SHARE

# The columns training reads from a revision (fields of `PreferencePair`), and the ones it reads when there:
# `prompt` (the messages a0 was generated from) is in rows built since builder g3; older rows render it from
# the question and the revision's answer template.
ROW_COLUMNS = ("pair_id", "source", "video_path", "video_sha256", "frame_indices", "question", "chosen", "rejected")
OPTIONAL_COLUMNS = ("prompt",)
# read when there, for `schemas.read_row`'s checks only: indices within the video
GUARD_COLUMNS = ("video_num_frames", "prompt")
PHRASE_COLUMNS = ("diff_spans",)  # read for RRPO only
MAX_EXAMPLES = 10

# Skip reasons of our own; decoder failures use the decoder's codes (missing_file, corrupt, ...).
MISSING_FILE = "missing_file"
NOT_A_FILE = "not_a_file"
UNREADABLE = "unreadable"
BAD_PATH = "bad_path"
OUTSIDE_ROOT = "outside_root"  # a symbolic link leads out of the source's root (see builders/decode/source_files.py)
SHA_MISMATCH = "sha256_mismatch"

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class DataCounts:
    """What was kept and what was skipped, by reason, in rows (pairs) and in distinct video files."""

    total_rows: int = 0
    kept_rows: int = 0
    skipped_rows: dict[str, int] = field(default_factory=dict)
    total_videos: int = 0
    kept_videos: int = 0
    skipped_videos: dict[str, int] = field(default_factory=dict)
    sha_mismatch_used: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)

    @property
    def skipped_share(self) -> float:
        return (self.total_rows - self.kept_rows) / self.total_rows if self.total_rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_rows": self.total_rows, "kept_rows": self.kept_rows, "skipped_rows": dict(self.skipped_rows),
            "skipped_share": round(self.skipped_share, 6), "total_videos": self.total_videos,
            "kept_videos": self.kept_videos, "skipped_videos": dict(self.skipped_videos),
            "sha_mismatch_used": self.sha_mismatch_used, "examples": list(self.examples),
        }


@dataclass
class TrainingData:
    """Rows ready for the collator (text + where to find the frames) and the counts behind them."""

    rows: list[dict[str, Any]]
    counts: DataCounts
    selection: Selection | None = None  # the question type and share of the revision asked for

    def to_dataset(self) -> Any:
        """A `datasets.Dataset`; the empty `images` column makes TRL take its vision path (no text-only
        tokenisation up front), and the collator turns `video_file` + `frame_indices` into frames."""
        from datasets import Dataset

        return Dataset.from_list(self.rows)


def video_file(roots: dict[str, Path], source: str, video_path: str, follow_symlinks: bool = False) -> Path:
    """`root/video_path` resolved, refusing paths that could leave the root (rows may come from anywhere):
    `ValueError` for an unsafe path, `OutsideRootError` for one whose links lead out of the root."""
    check_relative_posix_path(video_path)
    return source_path(roots[source], video_path, follow_symlinks=follow_symlinks)


def file_digest(path: Path) -> tuple[str | None, str | None]:
    """(sha256, None) for a readable file, else (None, reason)."""
    from videosavi.hashing import sha256_file

    try:
        if not path.exists():
            return None, MISSING_FILE
        if not path.is_file():
            return None, NOT_A_FILE
        return sha256_file(path), None
    except OSError:
        return None, UNREADABLE


def parallel_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, label: str) -> list[R]:
    """`fn` over items on a thread pool (hashing and decoding release the GIL), with a progress bar."""
    todo = list(items)
    if not todo:
        return []
    with progress_bar(transient=True) as bar, ThreadPoolExecutor(max(1, workers)) as pool:
        task = bar.add_task(label, total=len(todo))
        out = []
        for result in pool.map(fn, todo):
            out.append(result)
            bar.advance(task)
    return out


def check_sources(sources: list[str], roots: dict[str, Path]) -> None:
    """Every source in the revision needs a root: an unmapped one is a typo, not missing videos."""
    missing = Counter(s for s in sources if s not in roots)
    if missing:
        listed = ", ".join(f"{s} ({n} rows)" for s, n in sorted(missing.items()))
        given = ", ".join(sorted(roots)) or "none"
        raise TrainingDataError(
            f"no video root for source(s) {listed}; roots given for: {given}. Add --video-root SOURCE=DIR for "
            "each, or use the build's --config with --data-root"
        )


def enforce_share(counts: DataCounts, max_missing_share: float) -> None:
    """Stop before training when too many rows lost their video, or none are left."""
    if counts.kept_rows == 0 or counts.skipped_share > max_missing_share:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(counts.skipped_rows.items())) or "none"
        shown = "; ".join(f"{e['file']} ({e['reason']})" for e in counts.examples[:3])
        raise TrainingDataError(
            f"{counts.total_rows - counts.kept_rows} of {counts.total_rows} pairs "
            f"({counts.skipped_share:.1%}) cannot be used (by reason: {reasons}), above the allowed "
            f"{max_missing_share:.1%}; e.g. {shown}. Check the video roots, or raise --max-missing-share"
            + (", or pass --allow-sha-mismatch if the files were re-encoded on purpose"
               if SHA_MISMATCH in counts.skipped_rows else "")
        )


def rows_of(table: Any) -> list[dict[str, Any]]:
    """A dataset's (or Arrow table's) rows as dicts; a column that cannot be read (text that is not
    UTF-8, a nested value Arrow cannot convert) is one line naming the revision's problem."""
    try:
        return list(table.to_list() if hasattr(table, "to_list") else table.to_pylist())
    except (UnicodeDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise TrainingDataError(f"the revision's rows cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
                                "it was not written by savi publish") from exc


def resolve_files(rows: list[dict[str, Any]], roots: dict[str, Path],
                  follow_symlinks: Collection[str] = (), refused: list[str | None] | None = None) -> list[Path | str]:
    """Each row's file, or why it has none: `bad_path` (an unsafe path, or one the file system refuses),
    `outside_root` (a link that leaves the source's root; `follow_symlinks` names the sources allowed
    to), or the row's `refused` reason (a field `schemas.read_row` refused: nothing of it is opened)."""
    files: list[Path | str] = []
    for i, r in enumerate(rows):
        if refused is not None and refused[i] is not None:
            files.append(str(refused[i]))
            continue
        try:
            files.append(video_file(roots, r["source"], r["video_path"], r["source"] in follow_symlinks))
        except (ValueError, OSError):
            files.append(BAD_PATH)
        except DecodeError as exc:
            files.append(exc.reason)
    return files


def refuse_bad_rows(rows: list[dict[str, Any]]) -> list[str | None]:
    """Each row's reason code from `schemas.read_row` (None: usable), logging the first few problems:
    rows come from revisions anyone may have published, and a bad one is skipped, not fatal."""
    refused: list[str | None] = []
    for row in rows:
        problem = row_problem(row)
        refused.append(problem[0] if problem else None)
        if problem and refused.count(problem[0]) <= 3:
            log.warning("pair %s skipped (%s): %s", str(row.get("pair_id"))[:40], *problem)
    return refused


def hash_verdicts(rows: list[dict[str, Any]], files: list[Path | str],
                  digests: dict[Path, tuple[str | None, str | None]], *, allow_sha_mismatch: bool,
                  verify_decode: bool) -> tuple[list[str | None], list[int], set[Path]]:
    """(skip reason or None per row, rows to trial-decode, files used despite a hash mismatch); pure."""
    reasons: list[str | None] = []
    to_decode: list[int] = []
    mismatched: set[Path] = set()
    for i, (r, f) in enumerate(zip(rows, files, strict=True)):
        if isinstance(f, str):
            reasons.append(f)
            continue
        sha, problem = digests[f]
        if problem is None and sha != r["video_sha256"]:
            if allow_sha_mismatch:
                mismatched.add(f)
                to_decode.append(i)
            else:
                problem = SHA_MISMATCH
        elif problem is None and verify_decode:
            to_decode.append(i)
        reasons.append(problem)
    return reasons, to_decode, mismatched


def _trial_decode(rows: list[dict[str, Any]], files: list[Path | str], reasons: list[str | None],
                  to_decode: list[int], *, resize: tuple[int, int] | None, workers: int) -> None:
    """Decode each distinct (file, indices) of `to_decode` once; a failure becomes the rows' reason."""
    from videosavi.training.video_frames import decode_failure

    def key(i: int) -> tuple[str, tuple[int, ...]]:
        return str(files[i]), tuple(rows[i]["frame_indices"])

    keys = sorted({key(i) for i in to_decode})
    verdicts = parallel_map(lambda k: decode_failure(k[0], list(k[1]), resize), keys, workers=min(workers, 2),
                            label="checking frames")
    failures = dict(zip(keys, verdicts, strict=True))
    for i in to_decode:
        reasons[i] = failures[key(i)]


def prepare_training_data(
    dataset: Any,
    roots: dict[str, Path],
    *,
    max_missing_share: float = DEFAULT_MAX_MISSING_SHARE,
    allow_sha_mismatch: bool = False,
    verify_decode: bool = False,
    resize: tuple[int, int] | None = None,
    max_pairs: int | None = None,
    workers: int = 4,
    phrases: bool = False,
    follow_symlinks: Collection[str] = (),
    question_type: str = "both",
    fraction: float = 1.0,
    seed: int = 0,
) -> TrainingData:
    """Map, check and count the revision's rows; raise `TrainingDataError` above the missing share.

    `phrases` (RRPO) also keeps each row's `diff_spans`, after checking that they still cut its texts
    where they say (a hand-edited row is refused, named, before any video is hashed). `question_type` and
    `fraction` pick the pairs first (`training/subset.py`), so only their videos are checked. Files are resolved
    under their source's root and must stay inside it (`outside_root` otherwise), except for the sources
    `follow_symlinks` names (the build config's `follow_symlinks: true`)."""
    if not 0.0 <= max_missing_share <= 1.0:
        raise TrainingDataError(f"--max-missing-share must lie in [0, 1], got {max_missing_share}")
    columns = [*ROW_COLUMNS, *(PHRASE_COLUMNS if phrases else ())]
    missing_cols = [c for c in columns if c not in dataset.column_names]
    if missing_cols:
        raise TrainingDataError(f"the revision lacks column(s) {', '.join(missing_cols)}; is it a videosavi dataset?")
    optional = [c for c in OPTIONAL_COLUMNS if c in dataset.column_names]
    guarded = [c for c in GUARD_COLUMNS if c in dataset.column_names]
    table = dataset.select_columns(list(dict.fromkeys([*columns, *optional, *guarded])))
    selection = None
    if question_type != "both" or fraction < 1.0:
        if "question_type" not in dataset.column_names:
            raise TrainingDataError("the revision has no question_type column; --question-type and --fraction need it")
        picked, selection = select_pairs(dataset["question_type"], dataset["source"], dataset["pair_id"],
                                         question_type=question_type, fraction=fraction, seed=seed)
        if not picked:
            what = f"{question_type} pairs" if question_type != "both" else "pairs"
            raise TrainingDataError(f"no {what} left to train on (question type {question_type}, fraction "
                                    f"{fraction:g} of {len(dataset)} pairs)")
        table = table.select(picked)
    if max_pairs is not None:
        table = table.select(range(min(max_pairs, len(table))))
    rows: list[dict[str, Any]] = rows_of(table)
    if phrases:
        from videosavi.training.phrases import check_row_spans

        for row in rows:
            check_row_spans(row)
    checked = check_rows(rows, roots, allow_sha_mismatch=allow_sha_mismatch, verify_decode=verify_decode,
                         resize=resize, workers=workers, follow_symlinks=follow_symlinks)
    enforce_share(checked.counts, max_missing_share)
    return TrainingData(rows=_kept_rows(rows, checked.files, checked.reasons, with_prompt="prompt" in optional),
                        counts=checked.counts, selection=selection)


@dataclass
class CheckedRows:
    """Per row: its file (None when it has none: an unsafe path, or outside its root) and why it cannot be
    used (None: usable); and the counts."""

    files: list[Path | None]
    reasons: list[str | None]
    counts: DataCounts


def check_rows(rows: list[dict[str, Any]], roots: dict[str, Path], *, allow_sha_mismatch: bool = False,
               verify_decode: bool = False, resize: tuple[int, int] | None = None, workers: int = 4,
               follow_symlinks: Collection[str] = ()) -> CheckedRows:
    """Every row's video resolved under the roots, each distinct file hashed once against the rows'
    `video_sha256` (and trial-decoded where nothing vouches for it); rows need `source`, `video_path`,
    `video_sha256`, `frame_indices`. Shared by training and `savi export`."""
    refused = refuse_bad_rows(rows)
    check_sources([r["source"] for r, bad in zip(rows, refused, strict=True) if bad is None], roots)
    files = resolve_files(rows, roots, follow_symlinks, refused)
    unique = sorted({f for f in files if isinstance(f, Path)})
    digests = dict(zip(unique, parallel_map(file_digest, unique, workers=workers, label="hashing videos"), strict=True))
    reasons, to_decode, mismatch_files = hash_verdicts(rows, files, digests, allow_sha_mismatch=allow_sha_mismatch,
                                                       verify_decode=verify_decode)
    _trial_decode(rows, files, reasons, to_decode, resize=resize, workers=workers)
    return CheckedRows(files=[f if isinstance(f, Path) else None for f in files], reasons=reasons,
                       counts=_count(rows, files, reasons, mismatch_files))


def _count(rows: list[dict[str, Any]], files: list[Path | str], reasons: list[str | None],
           mismatch_files: set[Path]) -> DataCounts:
    counts = DataCounts(total_rows=len(rows))
    counts.kept_rows = sum(1 for r in reasons if r is None)
    counts.skipped_rows = dict(sorted(Counter(r for r in reasons if r is not None).items()))
    by_file: dict[str, str | None] = {}
    for f, reason, r in zip(files, reasons, rows, strict=True):
        key = str(f) if isinstance(f, Path) else f"{str(r.get('source'))[:40]}:{str(r.get('video_path'))[:200]}"
        # A file counts as kept if any of its rows is kept (clips of one file may differ in indices).
        by_file[key] = None if reason is None or by_file.get(key, "x") is None else reason
    counts.total_videos = len(by_file)
    counts.kept_videos = sum(1 for v in by_file.values() if v is None)
    counts.skipped_videos = dict(sorted(Counter(v for v in by_file.values() if v is not None).items()))
    counts.sha_mismatch_used = sum(1 for f in mismatch_files if by_file.get(str(f)) is None)
    counts.examples = [{"file": k, "reason": v} for k, v in by_file.items() if v is not None][:MAX_EXAMPLES]
    return counts


def _kept_rows(rows: list[dict[str, Any]], files: list[Path | None], reasons: list[str | None], *,
               with_prompt: bool = False) -> list[dict[str, Any]]:
    """Rows for the collator; `prompt` (when the revision has it) is the one the collator uses."""
    return [
        {"images": [], "pair_id": r["pair_id"], "question": r["question"], "chosen": r["chosen"],
         "rejected": r["rejected"], "video_file": str(f), "frame_indices": list(r["frame_indices"]),
         **({"prompt": r["prompt"]} if with_prompt else {}),
         **({"diff_spans": r["diff_spans"]} if "diff_spans" in r else {})}
        for r, f, reason in zip(rows, files, reasons, strict=True) if reason is None
    ]

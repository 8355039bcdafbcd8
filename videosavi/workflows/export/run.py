"""`export_revision`: one published revision -> files ms-swift or LLaMA-Factory train on as they are.

Order is chosen so bad input costs nothing and leaves nothing: options, OUT and the video roots are
checked first; the revision is resolved to a commit sha and read at it (`open_revision`, as `savi
train` does); every distinct video file is hashed against its rows (`check_rows`, shared with
training); only then are clips cut or frames written, into a staging folder beside OUT that becomes
OUT at the very end. Rows whose video is missing, changed (sha256) or unreadable are left out and
listed with their reason in `skipped.jsonl`; above `max_missing_share` of them the export stops.

```
OUT/train.jsonl          the rows (absolute media paths)
OUT/dataset_info.json    --format llamafactory: the entry LLaMA-Factory reads
OUT/clips/, OUT/frames/  cut clips (--clips cut, STAR rows) or frame images (--clips frames)
OUT/skipped.jsonl        rows left out: pair_id, source, video_path, file, reason
OUT/pair_ids.txt         the pair_id of each line of train.jsonl
OUT/export.json          repo, revision, commit sha, format, counts, roots, seconds
```
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from videosavi.errors import ExportError
from videosavi.hub_location import HubLocation
from videosavi.out_guard import check_apart
from videosavi.training_options import DEFAULT_MAX_MISSING_SHARE
from videosavi.version import __version__
from videosavi.workflows.export.formats import FORMATS
from videosavi.workflows.export.frame_files import IMAGE_FORMATS, frame_name
from videosavi.workflows.export.media import CLIP_MODES, ClipMode, MediaJob, RowMedia, distinct_jobs, plan_row_media
from videosavi.workflows.export.out_dir import check_out, commit, staged
from videosavi.workflows.export.rows import ExportRow

ROW_COLUMNS = ("pair_id", "source", "video_id", "video_path", "video_sha256", "clip_start", "clip_end",
               "frame_indices", "question", "chosen", "rejected")
REPORT = "skipped.jsonl"
PAIR_IDS = "pair_ids.txt"
SUMMARY = "export.json"


@dataclass
class ExportOptions:
    dataset: str
    revision: str
    format: str
    out: Path
    video_roots: list[str] = field(default_factory=list)
    config: str | Path | None = None
    data_root: Path | None = None
    store: Path | None = None
    endpoint: str | None = None
    clips: str = "cut"
    image_format: str = "jpg"
    name: str | None = None  # LLaMA-Factory dataset name; default <repo name>_<revision>
    max_missing_share: float = DEFAULT_MAX_MISSING_SHARE
    overwrite: bool = False
    threads: int = 2  # hashing videos, cutting clips


@dataclass
class ExportResult:
    out: Path
    data_file: Path
    sha: str
    total_rows: int
    rows: int
    skipped: dict[str, int]
    clips_cut: int
    frame_folders: int
    seconds: float
    dataset_name: str

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "data_file": str(self.data_file), "sha": self.sha, "total_rows": self.total_rows,
                "rows": self.rows, "skipped": dict(self.skipped), "clips_cut": self.clips_cut,
                "frame_folders": self.frame_folders, "seconds": round(self.seconds, 3),
                "dataset_name": self.dataset_name}


def check_options(opts: ExportOptions) -> None:
    """Option values that cannot work, refused with the option's name before anything is read."""
    checks = [
        (opts.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}, got {opts.format!r}"),
        (opts.clips in CLIP_MODES, f"--clips must be one of {', '.join(CLIP_MODES)}, got {opts.clips!r}"),
        (opts.image_format in IMAGE_FORMATS,
         f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {opts.image_format!r}"),
        (0.0 <= opts.max_missing_share <= 1.0, f"--max-missing-share must lie in [0, 1], got {opts.max_missing_share}"),
        (opts.threads > 0, "--threads must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ExportError(message)
    HubLocation(store=opts.store, endpoint=opts.endpoint)  # one place to read the revision from


def dataset_name(repo: str, revision: str) -> str:
    """`org/videosavi` at `iter1` -> `videosavi_iter1` (a key LLaMA-Factory's `--dataset` takes)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{repo.rsplit('/', 1)[-1]}_{revision}")


def check_roots_exist(roots: dict[str, Path], sources: set[str]) -> None:
    """A root the revision needs that is not a folder is a typo or an unmounted disk: one error, not
    every row reported missing."""
    for source in sorted(sources & set(roots)):
        if not roots[source].is_dir():
            raise ExportError(f"the video root of source {source!r} is not a folder: {roots[source]}")


def share_error(total: int, reasons: list[str | None], examples: list[str], limit: float) -> ExportError | None:
    """The error for too many unusable rows, or None (pure)."""
    bad = Counter(r for r in reasons if r is not None)
    n = sum(bad.values())
    if total and (n / total > limit or n == total):
        by = ", ".join(f"{r}: {k}" for r, k in sorted(bad.items()))
        return ExportError(f"{n} of {total} pairs ({n / total:.1%}) have no usable video (by reason: {by}), above the "
                           f"allowed {limit:.1%}; e.g. {'; '.join(examples[:3])}. Check the video roots "
                           "(--video-root or --config/--data-root), or raise --max-missing-share")
    return None


def export_revision(opts: ExportOptions) -> ExportResult:
    """Export `opts.dataset@opts.revision` in `opts.format` to `opts.out`; see the module docstring."""
    from videosavi.formats.dpo_prompt import prompt_texts
    from videosavi.training.data import GUARD_COLUMNS, check_rows, rows_of
    from videosavi.training.revision import open_revision
    from videosavi.training.video_roots import resolve_roots

    t0 = time.perf_counter()
    check_options(opts)
    roots = resolve_roots(opts.video_roots, opts.config, opts.data_root)
    check_apart(opts.out, {**{f"video root of {s}": p for s, p in roots.items()}, "store": opts.store},
                containers={"data root": opts.data_root})
    out = check_out(opts.out, overwrite=opts.overwrite)
    rev = open_revision(opts.dataset, opts.revision, store=opts.store, endpoint=opts.endpoint)
    table = rev.dataset.with_format("arrow")[:]
    missing = [c for c in ROW_COLUMNS if c not in table.column_names]
    if missing:
        raise ExportError(f"{opts.dataset}@{opts.revision} lacks column(s) {', '.join(missing)}; "
                          "is it a videosavi dataset?")
    guarded = [c for c in GUARD_COLUMNS if c in table.column_names]  # checked by schemas.read_row when there
    rows: list[dict[str, Any]] = rows_of(table.select([*ROW_COLUMNS, *guarded]))
    check_roots_exist(roots, {r["source"] for r in rows if isinstance(r["source"], str)})
    checked = check_rows(rows, roots, workers=opts.threads)
    reasons = list(checked.reasons)
    _raise_if_too_many(rows, checked.files, reasons, opts.max_missing_share)
    name = opts.name or dataset_name(opts.dataset, opts.revision)

    clips = cast(ClipMode, opts.clips)  # one of CLIP_MODES: checked with the other options
    with staged(out) as tmp:
        media: list[RowMedia | None] = [
            plan_row_media(r, f, clips, resize=rev.resize, image_format=opts.image_format)
            if reason is None and f is not None else None
            for r, f, reason in zip(rows, checked.files, reasons, strict=True)
        ]
        jobs = distinct_jobs(media)
        failed = _run_jobs(jobs, tmp, resize=rev.resize, image_format=opts.image_format, workers=opts.threads)
        for i, m in enumerate(media):
            if m is not None and m.job is not None and m.job.rel in failed:
                reasons[i], media[i] = failed[m.job.rel], None
        _raise_if_too_many(rows, checked.files, reasons, opts.max_missing_share)

        fmt = FORMATS[opts.format]
        kept = [i for i, m in enumerate(media) if m is not None]  # only rows that passed every check are rendered
        prompts = dict(zip(kept, prompt_texts(table.take(kept), rev.answer_template), strict=True))
        export_rows = [_export_row(rows[i], prompts[i], m, out, opts.image_format)
                       for i, m in enumerate(media) if m is not None]
        _write_jsonl(tmp / fmt.file_name, [fmt.record(row) for row in export_rows])
        for file_name, content in fmt.side_files(name).items():
            (tmp / file_name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / PAIR_IDS).write_text("".join(f"{row.pair_id}\n" for row in export_rows), encoding="utf-8")
        _write_jsonl(tmp / REPORT, [
            {"pair_id": r["pair_id"], "source": r["source"], "video_path": r["video_path"],
             "file": str(f) if f is not None else None, "reason": reason}
            for r, f, reason in zip(rows, checked.files, reasons, strict=True) if reason is not None
        ])
        result = ExportResult(
            out=out, data_file=out / fmt.file_name, sha=rev.sha, total_rows=len(rows), rows=len(export_rows),
            skipped=dict(sorted(Counter(r for r in reasons if r is not None).items())),
            clips_cut=sum(1 for j in jobs if j.kind == "clip" and j.rel not in failed),
            frame_folders=sum(1 for j in jobs if j.kind == "frames" and j.rel not in failed),
            seconds=0.0, dataset_name=name,
        )
        result.seconds = time.perf_counter() - t0
        summary = {"repo": opts.dataset, "revision": opts.revision, "format": opts.format, "clips": opts.clips,
                   "image_format": opts.image_format if opts.clips == "frames" else None, "reader": fmt.reader,
                   "roots": {k: str(v) for k, v in sorted(roots.items())}, "resize": rev.resize,
                   "videosavi_version": __version__, **result.to_dict()}
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        commit(tmp, out)
    return result


def _raise_if_too_many(rows: list[dict[str, Any]], files: list[Path | None], reasons: list[str | None],
                       limit: float) -> None:
    examples = [f"{str(f or str(r['source'])[:40] + ':' + str(r['video_path']))[:200]} ({reason})"
                for r, f, reason in zip(rows, files, reasons, strict=True) if reason is not None]
    error = share_error(len(rows), reasons, list(dict.fromkeys(examples)), limit)
    if error is not None:
        raise error


def _run_jobs(jobs: list[MediaJob], tmp: Path, *, resize: tuple[int, int] | None, image_format: str,
              workers: int) -> dict[str, str]:
    """Cut every clip / write every frame folder into `tmp`; returns {rel: decoder reason} of those that failed."""
    from videosavi.builders.decode.errors import DecodeError
    from videosavi.training.data import parallel_map
    from videosavi.workflows.export.clip_cut import cut_clip
    from videosavi.workflows.export.frame_files import write_frames

    def run(job: MediaJob) -> str | None:
        try:
            if job.kind == "clip":
                cut_clip(job.src, tmp / job.rel, job.clip_start, job.clip_end)
            else:
                write_frames(job.src, job.indices, tmp / job.rel, image_format=image_format, resize=resize)
        except DecodeError as exc:
            return str(getattr(exc, "reason", "decode_error"))
        return None

    label = "cutting clips" if jobs and jobs[0].kind == "clip" else "writing frames"
    verdicts = parallel_map(run, jobs, workers=workers, label=label)
    return {job.rel: reason for job, reason in zip(jobs, verdicts, strict=True) if reason is not None}


def _export_row(row: dict[str, Any], prompt: str, media: RowMedia, out: Path, image_format: str) -> ExportRow:
    common = {"pair_id": row["pair_id"], "prompt": prompt, "chosen": row["chosen"], "rejected": row["rejected"]}
    if media.video is not None:
        return ExportRow(**common, video=str(media.video))
    job = media.job
    assert job is not None
    if job.kind == "clip":
        return ExportRow(**common, video=str(out / job.rel))
    return ExportRow(**common, frames=tuple(str(out / job.rel / frame_name(i, image_format)) for i in job.indices))


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

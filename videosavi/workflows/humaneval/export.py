"""`savi humaneval export`: the blind rater sheet and its key file.

The sheet shows what a rater needs to find the moment (video path under its source, clip span,
the timestamps of the frames the model saw) and nothing that reveals the answer: no question type,
no pair id (an opaque item id instead), the chosen and rejected answers as A/B in random order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from videosavi.errors import HumanEvalError
from videosavi.workflows.humaneval.columns import KEY_WRITE_COLUMNS, SHEET_COLUMNS, SHEET_INFO_COLUMNS
from videosavi.workflows.humaneval.csv_io import neutralize_cell, write_csv
from videosavi.workflows.humaneval.items import SheetItem
from videosavi.workflows.humaneval.sampling import PerType, select_pairs

EXPORT_COLUMNS: tuple[str, ...] = (
    "pair_id", "video_uid", "source", "video_path", "clip_start", "clip_end", "frame_timestamps",
    "question_type", "question", "chosen", "rejected",
)

EXPORT_FORMATS: tuple[str, ...] = ("csv", "label-studio")


@dataclass(frozen=True)
class ExportResult:
    sheet: Path
    key: Path
    n_items: int
    quotas: dict[str, int]
    available_videos: int
    notes: list[str] = field(default_factory=list)
    also_written: list[Path] = field(default_factory=list)  # the Label Studio labeling config


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def build_rows(pairs: pl.DataFrame, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Sheet rows and key rows for the selected pairs, in a seeded random order with random A/B."""
    rng = random.Random(f"humaneval-order-{seed}")
    records = sorted(pairs.select(EXPORT_COLUMNS).to_dicts(), key=lambda r: r["pair_id"])
    rng.shuffle(records)
    width = max(3, len(str(len(records))))
    sheet_rows, key_rows = [], []
    for i, r in enumerate(records, start=1):
        item_id = f"item-{i:0{width}d}"
        chosen_is = "A" if rng.random() < 0.5 else "B"
        a, b = (r["chosen"], r["rejected"]) if chosen_is == "A" else (r["rejected"], r["chosen"])
        times = "; ".join(f"{t:.2f}" for t in r["frame_timestamps"] or [])
        info = [item_id, f"{r['source']}/{r['video_path']}", _seconds(r["clip_start"]), _seconds(r["clip_end"]),
                times, r["question"], a, b]
        sheet_rows.append([*info, "", "", "", "", ""])
        # the fingerprint of the cells as written (and read back), so sheet and key are checked against each other
        shown = SheetItem.from_cells(dict(zip(SHEET_INFO_COLUMNS, map(neutralize_cell, info), strict=True)))
        key_rows.append([item_id, r["pair_id"], chosen_is, r["question_type"], r["video_uid"], shown.fingerprint])
    return sheet_rows, key_rows


def export_humaneval(
    pairs: pl.DataFrame,
    out: Path,
    key: Path,
    *,
    n: int | None = None,
    seed: int = 0,
    per_type: PerType = False,
    allow_fewer: bool = False,
    bom: bool = False,
    fmt: str = "csv",
    video_url_prefix: str | None = None,
) -> ExportResult:
    """Select, blind and write `out` (for raters) and `key` (kept from them). `n` defaults to the
    paper's 516, or to the sum of explicit `per_type` counts (see `sampling.select_pairs`). Refuses to
    overwrite the sheet with the key or vice versa.

    `fmt="label-studio"` writes Label Studio tasks (JSON) to `out` and the labeling config beside it
    (`label_studio.write_label_studio`), each video at `video_url_prefix` + `source/path`."""
    if fmt not in EXPORT_FORMATS:
        raise HumanEvalError(f"--format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    if video_url_prefix is not None and fmt != "label-studio":
        raise HumanEvalError("--video-url-prefix applies to --format label-studio only")
    missing = [c for c in EXPORT_COLUMNS if c not in pairs.columns]
    if missing:
        raise HumanEvalError(f"the pairs lack column(s) {', '.join(missing)}: is it a videosavi dataset?")
    if Path(out).resolve() == Path(key).resolve():
        raise HumanEvalError("--out and --key must be different files (the key must stay hidden from raters)")
    selection = select_pairs(pairs, n, seed=seed, per_type=per_type, allow_fewer=allow_fewer)
    sheet_rows, key_rows = build_rows(selection.pairs, seed)
    write_csv(Path(key), KEY_WRITE_COLUMNS, key_rows, bom=bom)
    extra: list[Path] = []
    if fmt == "label-studio":
        from videosavi.workflows.humaneval.label_studio import LOCAL_FILES_PREFIX, write_label_studio

        items = [SheetItem.from_cells(dict(zip(SHEET_COLUMNS, map(neutralize_cell, row), strict=True)))
                 for row in sheet_rows]
        extra.append(write_label_studio(Path(out), items, video_url_prefix or LOCAL_FILES_PREFIX)[1])
    else:
        write_csv(Path(out), SHEET_COLUMNS, sheet_rows, bom=bom)
    return ExportResult(Path(out), Path(key), len(sheet_rows), selection.quotas, selection.available_videos,
                        list(selection.notes), extra)

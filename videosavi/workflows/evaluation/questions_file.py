"""Questions supplied by the user instead of generated: one row per question about a held-out video.

Accepted formats: `.jsonl` (one object per line), `.csv` and `.parquet`, with the columns
`video_uid`, `question_type` (spatial/temporal) and `question`. Every row is checked before any
video is touched, and all problems are reported at once with their line numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import polars as pl

from videosavi.errors import ConfigError
from videosavi.schemas import QUESTION_TYPES, QuestionType

COLUMNS: tuple[str, ...] = ("video_uid", "question_type", "question")
_EXAMPLES = 5


@dataclass(frozen=True)
class GivenQuestion:
    video_uid: str
    question_type: QuestionType
    question: str


def _frame(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"--questions {path}: cannot read it ({exc})") from exc
    raise ConfigError(f"--questions {path}: use a .jsonl, .csv or .parquet file")


def read_questions_file(path: str | Path) -> list[GivenQuestion]:
    """The file's questions in file order; raises `ConfigError` naming every bad row."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--questions {path} does not exist")
    df = _frame(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ConfigError(f"--questions {path} lacks the column(s) {', '.join(missing)} (needs {', '.join(COLUMNS)})")
    out, bad = [], []
    for i, row in enumerate(df.select(COLUMNS).iter_rows(named=True), start=1):
        uid, qtype, text = (str(row[c] or "").strip() for c in COLUMNS)
        if not uid or not text:
            bad.append(f"row {i}: empty video_uid or question")
        elif qtype not in QUESTION_TYPES:
            bad.append(f"row {i}: question_type must be {' or '.join(QUESTION_TYPES)}, got {qtype!r}")
        else:
            out.append(GivenQuestion(uid, cast(QuestionType, qtype), text))  # checked just above
    if bad:
        raise ConfigError(f"--questions {path}: {len(bad)} bad row(s): " + "; ".join(bad[:_EXAMPLES]))
    if not out:
        raise ConfigError(f"--questions {path} holds no questions")
    return out

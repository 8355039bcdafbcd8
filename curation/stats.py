"""Dataset statistics with polars: what the card shows and `savi stats` prints.

`pairs_frame` accepts whatever a caller has (run directory, parquet file, Arrow table, `datasets`
Dataset, pairs), `summarize` turns it into a JSON-serialisable `DatasetStats`, and `compare` lays
several revisions side by side. Error-type counts are the self-critique's issues in the pairs each
revision kept (a pair with two issues counts twice): what the builder's own critic flagged in its own
answers, on different videos in every iteration. They are not the paper's Table 2, which counts an
external judge's errors on one fixed question set (`savi eval`, `curation/eval_table.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from videosavi.errors import DatasetError
from videosavi.run_dir import RunDir
from videosavi.schemas import ERROR_TYPES, QUESTION_TYPES, SEVERITIES, PreferencePair

# Record fields the statistics read; checked against the schema so a renamed field fails here loudly.
STATS_COLUMNS: tuple[str, ...] = (
    "iteration",
    "video_uid",
    "source",
    "question_type",
    "severity",
    "issues",
    "chosen_words",
    "rejected_words",
)
if not set(STATS_COLUMNS) <= set(PreferencePair.model_fields):  # pragma: no cover - a schema change
    raise RuntimeError("curation.stats reads fields the PreferencePair schema no longer has")

P90 = 0.9
_QUANTILE_METHOD = "linear"  # numpy's default: p90 of 1..10 is 9.1


class Distribution(BaseModel):
    """Summary of a numeric column (None for every figure when there are no rows)."""

    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    min: float | None = None
    max: float | None = None


class LengthRatio(BaseModel):
    """chosen_words / rejected_words per pair (ISR-DPO's verbosity check)."""

    mean: float | None = None
    median: float | None = None
    ratio_of_means: float | None = Field(default=None, description="all chosen words / all rejected words")
    share_chosen_longer: float | None = Field(default=None, description="pairs where chosen has more words")
    n_undefined: int = Field(default=0, description="pairs whose rejected answer has no words (ratio undefined)")


class IssuesPerPair(BaseModel):
    mean: float | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="number of issues -> pairs")


class DatasetStats(BaseModel):
    """Everything `summarize` computes; `model_dump(mode="json")` is what `--json` prints."""

    n_pairs: int
    n_videos: int
    by_iteration: dict[str, int] = Field(default_factory=dict)
    by_source: dict[str, int] = Field(default_factory=dict)
    by_question_type: dict[str, int] = Field(default_factory=dict)
    by_source_question_type: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="source -> question type -> pairs"
    )
    by_severity: dict[str, int] = Field(default_factory=dict, description="pair-level severity")
    by_error_type: dict[str, int] = Field(default_factory=dict, description="issue-level counts")
    error_type_by_severity: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="error type -> issue severity -> issues"
    )
    n_issues: int = 0
    issues_per_pair: IssuesPerPair = IssuesPerPair()
    pairs_per_video: dict[str, int] = Field(default_factory=dict, description="pairs in a video -> videos")
    chosen_words: Distribution = Distribution()
    rejected_words: Distribution = Distribution()
    length_ratio: LengthRatio = LengthRatio()


# --- loading --------------------------------------------------------------------------------------

def pairs_frame(source: Any) -> pl.DataFrame:
    """Pairs as a polars DataFrame, from a run directory, a parquet file or folder, an Arrow table,
    a polars frame, a `datasets.Dataset`/`DatasetDict` (its `train` split) or a list of pairs."""
    df = _to_frame(source)
    missing = [c for c in STATS_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(
            f"{_describe(source)} lacks the pair column(s) {', '.join(missing)}: is it a videosavi dataset?"
        )
    return df


def _describe(source: Any) -> str:
    return str(source) if isinstance(source, str | Path) else f"the {type(source).__name__}"


def _arrow_frame(table: Any) -> pl.DataFrame:
    """An Arrow table as a polars frame (`from_arrow` gives a Series only for an array)."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _to_frame(source: Any) -> pl.DataFrame:
    import pyarrow as pa

    if isinstance(source, pl.DataFrame):
        return source
    if isinstance(source, pa.Table):
        return _arrow_frame(source)
    if isinstance(source, str | Path):
        return _read_path(Path(source))
    if isinstance(source, Sequence) and all(isinstance(p, PreferencePair) for p in source):
        from videosavi.schemas.arrow import to_table

        return _arrow_frame(to_table(list(source), PreferencePair))
    if type(source).__module__.split(".")[0] == "datasets":
        if hasattr(source, "to_polars"):
            return source.to_polars()
        if isinstance(source, Mapping):  # DatasetDict
            if "train" not in source:
                raise DatasetError(f"the dataset has splits {sorted(source)}; expected a 'train' split")
            return source["train"].to_polars()
    raise DatasetError(f"cannot read pairs from a {type(source).__name__}")


def _read_path(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    if path.is_file():
        if path.suffix != ".parquet":
            raise DatasetError(f"{path} is not a parquet file")
        return pl.read_parquet(path)
    run = RunDir(path)
    if run.shard_paths():
        return _arrow_frame(run.read_pairs_table())
    files = sorted(path.glob("*.parquet"))
    if files:
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical")
    if (path / "build.json").exists() or (path / "parts").exists():
        raise DatasetError(f"{path} has no data/train-*.parquet shards: the build has not finished (run it again)")
    raise DatasetError(f"{path} holds no pairs: expected a run directory (data/train-*.parquet) or parquet files")


# --- summary --------------------------------------------------------------------------------------

def _counts(df: pl.DataFrame, column: str, order: Sequence[str] = ()) -> dict[str, int]:
    """Counts by value: the known values first (zeros included), then any other value sorted."""
    if df.is_empty():
        return dict.fromkeys(order, 0)
    found = {str(k): int(v) for k, v in df.group_by(column).agg(pl.len().alias("_n")).iter_rows()}
    out = {k: found.pop(k, 0) for k in order}
    out.update(dict(sorted(found.items())))
    return out


def _number(value: object) -> float | None:
    """A polars aggregate of a numeric column as a float (None when it has no value)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _distribution(series: pl.Series) -> Distribution:
    s = series.drop_nulls().cast(pl.Float64)
    if s.is_empty():
        return Distribution()
    return Distribution(
        mean=s.mean(), median=s.median(), p90=s.quantile(P90, _QUANTILE_METHOD), min=s.min(), max=s.max()
    )


def summarize(df: pl.DataFrame) -> DatasetStats:
    """Counts and distributions of one dataset (see `DatasetStats` for the figures)."""
    df = pairs_frame(df)
    issues = (
        df.select(pl.col("issues").explode()).drop_nulls().unnest("issues")
        if df.height
        else pl.DataFrame(schema={"error_type": pl.String, "severity": pl.String})
    )
    by_error = _counts(issues, "error_type", ERROR_TYPES)
    cross: dict[str, dict[str, int]] = {}
    for et in by_error:
        cross[et] = _counts(issues.filter(pl.col("error_type") == et), "severity", SEVERITIES)
    by_source = _counts(df, "source")
    source_type = {src: _counts(df.filter(pl.col("source") == src), "question_type", QUESTION_TYPES)
                   for src in by_source}
    total_rejected = int(df["rejected_words"].sum()) if df.height else 0
    n_issues = df.select(pl.col("issues").list.len().alias("k"))
    per_video = df.group_by("video_uid").agg(pl.len().alias("pairs"))
    chosen, rejected = df["chosen_words"], df["rejected_words"]
    defined = df.filter(pl.col("rejected_words") > 0)
    ratio = (defined["chosen_words"] / defined["rejected_words"]).cast(pl.Float64)
    return DatasetStats(
        n_pairs=df.height,
        n_videos=df["video_uid"].n_unique(),
        by_iteration=_counts(df, "iteration"),
        by_source=by_source,
        by_question_type=_counts(df, "question_type", QUESTION_TYPES),
        by_source_question_type=source_type,
        by_severity=_counts(df, "severity", SEVERITIES),
        by_error_type=by_error,
        error_type_by_severity=cross,
        n_issues=issues.height,
        issues_per_pair=IssuesPerPair(
            mean=_number(n_issues["k"].mean()) if df.height else None,
            counts={str(k): v for k, v in sorted(_counts(n_issues, "k").items(), key=lambda kv: int(kv[0]))},
        ),
        pairs_per_video={
            str(k): v for k, v in sorted(_counts(per_video, "pairs").items(), key=lambda kv: int(kv[0]))
        },
        chosen_words=_distribution(chosen),
        rejected_words=_distribution(rejected),
        length_ratio=LengthRatio(
            mean=ratio.mean() if ratio.len() else None,
            median=ratio.median() if ratio.len() else None,
            ratio_of_means=int(chosen.sum()) / total_rejected if total_rejected else None,
            share_chosen_longer=_number((chosen > rejected).mean()) if df.height else None,
            n_undefined=df.height - defined.height,
        ),
    )


# --- comparison -----------------------------------------------------------------------------------

_COUNT_TABLES = {
    "error_type": ("by_error_type", ERROR_TYPES),
    "severity": ("by_severity", SEVERITIES),
    "question_type": ("by_question_type", QUESTION_TYPES),
    "source": ("by_source", ()),
}
TREND_ROWS: tuple[str, ...] = (
    "length ratio (median)",
    "length ratio (mean)",
    "chosen words / rejected words (totals)",
    "chosen longer (share of pairs)",
    "chosen words (mean)",  # with the ratio above: ISR-DPO's Figure 4 (a) and (b), per iteration
    "rejected words (mean)",
    "critical pairs (share)",
    "critical issues (share of issues)",
    "issues per pair (mean)",
)
OVERVIEW_ROWS: tuple[str, ...] = (
    "pairs",
    "videos",
    "issues",
    "issues per pair (mean)",
    "critical share",
    "chosen words (mean)",
    "rejected words (mean)",
    "length ratio (median)",
    "chosen longer (share)",
)


def _overview(s: DatasetStats) -> list[float | None]:
    critical = s.by_severity.get("critical", 0) / s.n_pairs if s.n_pairs else None
    return [
        s.n_pairs, s.n_videos, s.n_issues, s.issues_per_pair.mean, critical, s.chosen_words.mean,
        s.rejected_words.mean, s.length_ratio.median, s.length_ratio.share_chosen_longer,
    ]


def _trend(s: DatasetStats) -> list[float | None]:
    """How the length bias (ISR-DPO's Figure 4: mean chosen length, chosen/rejected ratio) and the critic's
    severity mix stand in one revision (see TREND_ROWS)."""
    r = s.length_ratio
    critical_pairs = s.by_severity.get("critical", 0) / s.n_pairs if s.n_pairs else None
    critical_issues = (sum(d.get("critical", 0) for d in s.error_type_by_severity.values()) / s.n_issues
                       if s.n_issues else None)
    return [r.median, r.mean, r.ratio_of_means, r.share_chosen_longer, s.chosen_words.mean, s.rejected_words.mean,
            critical_pairs, critical_issues, s.issues_per_pair.mean]


_FIGURE_TABLES = {"overview": (OVERVIEW_ROWS, _overview), "trend": (TREND_ROWS, _trend)}


def compare(stats: Mapping[str, DatasetStats], by: str = "error_type") -> pl.DataFrame:
    """Revisions side by side: one row per category (plus `total`), one column per label.

    `by="error_type"` counts the self-critique's issues per error type in each revision's kept
    pairs; `severity`, `question_type` and `source` count pairs; `overview` lists headline figures
    and `trend` the answer lengths, length ratio and severity mix, to follow them across iterations.
    """
    labels = list(stats)
    if by in _FIGURE_TABLES:
        names, figures = _FIGURE_TABLES[by]
        columns: dict[str, list[Any]] = {"metric": list(names)}
        for label in labels:
            columns[label] = [None if v is None else float(v) for v in figures(stats[label])]
        return pl.DataFrame(columns, schema={"metric": pl.String, **dict.fromkeys(labels, pl.Float64)})
    if by not in _COUNT_TABLES:
        raise ValueError(f"compare(by={by!r}): expected one of {', '.join([*_COUNT_TABLES, *_FIGURE_TABLES])}")
    attr, order = _COUNT_TABLES[by]
    keys = list(order)
    for s in stats.values():
        keys += sorted(k for k in getattr(s, attr) if k not in keys)
    columns = {by: [*keys, "total"]}
    for label in labels:
        counts = getattr(stats[label], attr)
        values = [int(counts.get(k, 0)) for k in keys]
        columns[label] = [*values, sum(values)]
    return pl.DataFrame(columns, schema={by: pl.String, **dict.fromkeys(labels, pl.Int64)})

"""Check a run directory completely before anything is published.

A published revision is immutable in practice (people pin it), so every shard is read back against
the derived Arrow schema and every row through the pydantic model, and the counts are checked
against build.json. The first problems are reported with their file and row, and nothing is
published.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from videosavi.errors import PublishError
from videosavi.hub.run_trust import template_problems, untrusted_files
from videosavi.progress import progress_bar
from videosavi.run_dir import RunDir
from videosavi.schemas import BuildInfo, PreferencePair, QuarantineRecord, VideoRef, VideoSkip
from videosavi.schemas.arrow import arrow_schema

SHARD_NAME = re.compile(r"^train-(\d{5})-of-(\d{5})\.parquet$")
MAX_REPORTED = 5


@dataclass(frozen=True)
class ValidatedRun:
    """A run directory that passed every check, with what publishing needs already read."""

    run: RunDir
    info: BuildInfo
    shards: list[str]  # relative to the run directory, in order
    table: pa.Table  # every row, derived schema
    videos: list[VideoRef]
    quarantine: list[QuarantineRecord]
    skipped: list[VideoSkip]
    prompts: dict[str, str]


def _fail(run: RunDir, problems: list[str]) -> PublishError:
    shown = problems[:MAX_REPORTED]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return PublishError(f"{run.path} cannot be published:\n  " + "\n  ".join(shown) + more)


def _pydantic_brief(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "row"
    return f"{where}: {first.get('msg')}"


def _read_build_info(run: RunDir) -> BuildInfo:
    if not run.build_json.is_file():
        raise PublishError(f"{run.path} has no build.json: is it a finished run directory?")
    try:
        return BuildInfo.model_validate_json(run.build_json.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise PublishError(f"{run.build_json} is not a valid build.json: {_pydantic_brief(exc)}") from exc


def check_shard_names(names: list[str], declared: list[str]) -> list[str]:
    """Problems with the shard file names: foreign files, gaps, mixed totals, or a build.json mismatch."""
    problems = []
    indices: dict[int, str] = {}
    totals = set()
    for name in names:
        m = SHARD_NAME.match(name)
        if not m:
            problems.append(f"data/{name}: not a shard name (expected data/train-0000k-of-0000n.parquet)")
            continue
        indices[int(m.group(1))] = name
        totals.add(int(m.group(2)))
    if not names:
        problems.append("data/ holds no shards")
    if len(totals) > 1:
        problems.append(f"shards disagree on their total: {sorted(totals)}")
    elif totals:
        (total,) = totals
        missing = sorted(set(range(total)) - set(indices))
        if missing or len(indices) != total:
            problems.append(f"expected {total} shards 0..{total - 1}; missing {missing or 'none'}, "
                            f"found {len(indices)}")
    if declared and sorted(declared) != sorted(f"data/{n}" for n in names):
        problems.append(f"build.json lists shards {declared} but data/ holds {['data/' + n for n in names]}")
    return problems


def _older_layout(schema: pa.Schema, expected: pa.Schema) -> bool:
    """True for a shard written before the record gained nullable columns (e.g. `prompt`, builder g3):
    every column it has is the current one, and every column it lacks may be null."""
    if any(expected.get_field_index(f.name) < 0 or not f.type.equals(expected.field(f.name).type) for f in schema):
        return False
    return all(f.nullable for f in expected if schema.get_field_index(f.name) < 0)


def missing_columns(path: Path) -> list[str]:
    """Columns of the record a shard lacks (an older build's shard; empty for a current one)."""
    present = set(pq.read_schema(path).names)
    return [name for name in arrow_schema(PreferencePair).names if name not in present]


def _rows(path: Path, label: str, problems: list[str], on_rows: Callable[[int], None]) -> pa.Table | None:
    expected = arrow_schema(PreferencePair)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"{label}: not a readable parquet file ({exc})")
        return None
    if not schema.equals(expected, check_metadata=False) and not _older_layout(schema, expected):
        diff = sorted({f.name for f in schema} ^ {f.name for f in expected})
        problems.append(f"{label}: schema differs from PreferencePair's derived schema"
                        + (f" (columns differing: {diff})" if diff else " (column types differ)"))
        return None
    table = pq.read_table(path, schema=expected)  # a column the shard predates reads as null
    for i, row in enumerate(table.to_pylist()):
        try:
            PreferencePair.model_validate(row)
        except ValidationError as exc:
            problems.append(f"{label} row {i}: {_pydantic_brief(exc)}")
    on_rows(table.num_rows)
    return table


def _side_records(run: RunDir, problems: list[str]) -> tuple[list[VideoRef], list[QuarantineRecord], list[VideoSkip]]:
    videos: list[VideoRef] = []
    quarantine: list[QuarantineRecord] = []
    skipped: list[VideoSkip] = []
    side_readers: list[tuple[str, Callable[[], Sequence[QuarantineRecord | VideoSkip]], list]] = [
        ("quarantine.jsonl", run.read_quarantine, quarantine), ("skipped.jsonl", run.read_skipped, skipped)]
    if not run.videos.is_file():
        problems.append("videos.parquet is missing")
    else:
        try:
            videos = run.read_videos()
        except (ValidationError, OSError, pa.ArrowException) as exc:
            problems.append(f"videos.parquet is not valid: {exc}")
    for label, reader, sink in side_readers:
        try:
            sink.extend(reader())
        except (ValidationError, ValueError) as exc:
            problems.append(f"{label} is not valid: {exc}")
    return videos, quarantine, skipped


def validate_run_dir(path: str | Path) -> ValidatedRun:
    """Every check publishing relies on; raises `PublishError` listing the first problems."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise PublishError(f"run directory not found: {run.path}")
    untrusted = untrusted_files(run)  # before any file is opened: no link out, no special file
    if untrusted:
        raise _fail(run, untrusted)
    info = _read_build_info(run)
    names = sorted(p.name for p in run.data_dir.iterdir()) if run.data_dir.is_dir() else []
    problems = check_shard_names(names, info.shards)
    if problems:
        raise _fail(run, problems)
    tables: list[pa.Table] = []
    with progress_bar(transient=True) as bar:
        task = bar.add_task("validating rows", total=info.counts.pairs or None)
        for name in names:
            table = _rows(run.data_dir / name, f"data/{name}", problems, lambda n: bar.advance(task, n))
            if table is not None:
                tables.append(table)
    table = pa.concat_tables(tables) if tables else arrow_schema(PreferencePair).empty_table()
    if not problems:
        if table.num_rows != info.counts.pairs:
            problems.append(f"the shards hold {table.num_rows} rows but build.json counts.pairs is {info.counts.pairs}")
        iterations = set(table.column("iteration").to_pylist())
        if iterations - {info.iteration}:
            problems.append(f"rows carry iteration(s) {sorted(iterations)} but build.json says {info.iteration}")
        ids = table.column("pair_id").to_pylist()
        if len(set(ids)) != len(ids):
            problems.append(f"{len(ids) - len(set(ids))} duplicate pair_id(s)")
    videos, quarantine, skipped = _side_records(run, problems)
    changed = template_problems(info, run.prompts_dir)
    if changed:
        raise _fail(run, problems + changed)
    prompts = run.read_prompts()
    missing_prompts = sorted(set(info.prompts) - set(prompts))
    if missing_prompts:
        problems.append(f"prompts/ lacks the templates build.json names: {missing_prompts}")
    if problems:
        raise _fail(run, problems)
    return ValidatedRun(run, info, [f"data/{n}" for n in names], table, videos, quarantine, skipped, prompts)

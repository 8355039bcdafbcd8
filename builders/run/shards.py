"""Parquet output in the Hugging Face layout, written incrementally and finalised deterministically.

While a build runs, each finished video's pairs go to their own small part file (written to a temp
name, then renamed, so a killed process never leaves a half part). Finalising concatenates the parts
in sample order into `data/train-0000k-of-0000n.parquet`; the result depends only on the parts, so a
resumed or sharded build gives byte-identical rows to an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from videosavi._faults import failpoint
from videosavi.run_dir import DATA_DIR, SPLIT, shard_name
from videosavi.schemas import PreferencePair
from videosavi.schemas.arrow import arrow_schema, to_table

PARTS_DIR = "parts"


def part_path(run_dir: Path, seq: int) -> Path:
    return Path(run_dir) / PARTS_DIR / f"video-{seq:07d}.parquet"


def write_video_part(run_dir: Path, seq: int, pairs: list[PreferencePair]) -> Path:
    """Atomically write one video's pairs (possibly none) as part `seq`."""
    path = part_path(run_dir, seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        failpoint("part_write")
        pq.write_table(to_table(pairs, PreferencePair), tmp)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def has_part(run_dir: Path, seq: int) -> bool:
    return part_path(run_dir, seq).exists()


def part_files(part_dirs: Iterable[Path]) -> dict[int, Path]:
    """Sequence number -> part file, over one or more run directories (a video's part lives in one)."""
    parts: dict[int, Path] = {}
    for d in part_dirs:
        for p in sorted((Path(d) / PARTS_DIR).glob("video-*.parquet")):
            seq = int(p.stem.split("-")[1])
            if seq in parts:
                raise ValueError(f"video part {seq} exists in two run directories: {parts[seq]} and {p}")
            parts[seq] = p
    return parts


def iter_part_tables(part_dirs: Iterable[Path]) -> Iterator[tuple[int, pa.Table]]:
    """(sequence number, part table) from one or more run directories, in sample order."""
    parts = part_files(part_dirs)
    for seq in sorted(parts):
        yield seq, pq.read_table(parts[seq], schema=arrow_schema(PreferencePair))


def part_question_types(part_dirs: Iterable[Path]) -> dict[int, tuple[str, ...]]:
    """Sequence number -> its pairs' question types in row order: all that quota selection needs, read
    from one column of each part."""
    return {seq: tuple(pq.read_table(path, columns=["question_type"]).column(0).to_pylist())
            for seq, path in part_files(part_dirs).items()}


def finalize(run_dir: Path, pairs_per_shard: int, part_dirs: Iterable[Path] | None = None,
             keep: Mapping[int, Sequence[bool]] | None = None) -> list[str]:
    """Write `data/` shards from the parts (of `run_dir`, or of several dirs when merging shards).

    `keep[seq]` masks a part's rows (quota selection); a part without a mask is kept whole. Streams: at
    most one shard's rows are in memory. Returns the shard paths relative to run_dir.
    """
    run_dir = Path(run_dir)
    schema = arrow_schema(PreferencePair)
    buffer: list[pa.Table] = []
    buffered = 0
    chunks_dir = run_dir / DATA_DIR / ".tmp"
    chunks_dir.mkdir(parents=True, exist_ok=True)
    for stale in chunks_dir.glob("*"):
        stale.unlink()
    chunk_files: list[Path] = []

    def flush(tables: list[pa.Table]) -> None:
        path = chunks_dir / f"chunk-{len(chunk_files):05d}.parquet"
        pq.write_table(pa.concat_tables(tables) if tables else schema.empty_table(), path)
        chunk_files.append(path)
        failpoint("shard_written")

    for seq, table in iter_part_tables(part_dirs or [run_dir]):
        if keep is not None and seq in keep:
            table = table.filter(pa.array(list(keep[seq]), pa.bool_()))
        while table.num_rows:
            take = min(pairs_per_shard - buffered, table.num_rows)
            buffer.append(table.slice(0, take))
            buffered += take
            table = table.slice(take)
            if buffered == pairs_per_shard:
                flush(buffer)
                buffer, buffered = [], 0
    if buffer or not chunk_files:
        flush(buffer)
    for old in (run_dir / DATA_DIR).glob(f"{SPLIT}-*.parquet"):
        old.unlink()
    names = []
    for i, chunk in enumerate(chunk_files):
        name = shard_name(i, len(chunk_files))
        os.replace(chunk, run_dir / name)
        names.append(name)
    chunks_dir.rmdir()
    return names


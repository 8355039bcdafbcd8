"""The layout of a run directory, in one place; builders write it, publishing, stats and cards read it.

A core module: the builder writes a run directory and `hub`, `curation` and the workflows read it, so
its layout and readers live below all of them (the writers of the pairs' parts and shards stay in
`builders/run/shards.py`).

```
RUN_DIR/
  build.json          BuildInfo: config, model, prompt hashes, seed, counts, timings
  videos.parquet      the sample (VideoRef rows, with availability and hashes)
  data/train-0000k-of-0000n.parquet   the pairs (PreferencePair rows)
  quarantine.jsonl    model outputs that stayed malformed, with their raw text
  skipped.jsonl       sampled videos that gave no pairs, with the reason
  prompts/*.txt       the prompt templates used
  parts/ cache.sqlite working state for resume (not published)
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from videosavi.schemas import BuildInfo, PreferencePair, QuarantineRecord, VideoRef, VideoSkip
from videosavi.schemas.arrow import arrow_schema, from_table, to_table

_SAMPLE_KEY = b"videosavi.sample_key"
DATA_DIR = "data"
SPLIT = "train"


def shard_name(index: int, total: int, split: str = SPLIT) -> str:
    """`data/train-0000k-of-0000n.parquet`: the Hugging Face layout `load_dataset` maps to a split."""
    return f"{DATA_DIR}/{split}-{index:05d}-of-{total:05d}.parquet"


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def build_json(self) -> Path:
        return self.path / "build.json"

    @property
    def videos(self) -> Path:
        return self.path / "videos.parquet"

    @property
    def quarantine(self) -> Path:
        return self.path / "quarantine.jsonl"

    @property
    def skipped(self) -> Path:
        return self.path / "skipped.jsonl"

    @property
    def prompts_dir(self) -> Path:
        return self.path / "prompts"

    @property
    def cache_db(self) -> Path:
        return self.path / "cache.sqlite"

    @property
    def data_dir(self) -> Path:
        return self.path / DATA_DIR

    # --- data/ shards -----------------------------------------------------------------------
    def shard_paths(self) -> list[Path]:
        """The finalised pair shards, in order (none while a build is unfinished)."""
        return sorted(self.data_dir.glob(f"{SPLIT}-*-of-*.parquet"))

    def read_pairs_table(self) -> pa.Table:
        """All finalised rows as one Arrow table with the derived schema (an empty table when none)."""
        schema = arrow_schema(PreferencePair)
        tables = [pq.read_table(p, schema=schema) for p in self.shard_paths()]
        return pa.concat_tables(tables) if tables else schema.empty_table()

    # --- build.json -------------------------------------------------------------------------
    def write_build_info(self, info: BuildInfo) -> None:
        atomic_write_text(self.build_json, info.model_dump_json(indent=2) + "\n")

    def write_final_build_info(self, info: BuildInfo) -> BuildInfo:
        """Write a finished build's build.json, unless the run was already finished with the same result:
        then the file stays byte for byte as it was (its `created_at` and timings included), so re-running
        a finished build (or merge) changes nothing and publishing it again is a no-op, not "changed
        content under iterN" (`savi loop` resumes after a kill between build and publish). Returns the
        build.json in effect."""
        if self.build_json.is_file():
            try:
                old: BuildInfo | None = self.read_build_info()
            except (ValueError, OSError):
                old = None
            if old is not None and old.model_copy(update={"created_at": info.created_at,
                                                          "timings": info.timings}) == info:
                return old
        self.write_build_info(info)
        return info

    def read_build_info(self) -> BuildInfo:
        if not self.build_json.exists():
            raise FileNotFoundError(f"{self.build_json} not found: is {self.path} a finished run directory?")
        return BuildInfo.model_validate_json(self.build_json.read_text(encoding="utf-8"))

    # --- videos.parquet ---------------------------------------------------------------------
    def write_videos(self, videos: list[VideoRef], sample_key: str | None = None) -> None:
        """`sample_key` identifies the sampling setup (sources, seed, sampler version), so a later
        build can refuse a sample drawn under another config."""
        tmp = self.videos.with_suffix(".tmp")
        self.path.mkdir(parents=True, exist_ok=True)
        table = to_table(videos, VideoRef)
        if sample_key:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), _SAMPLE_KEY: sample_key.encode()})
        pq.write_table(table, tmp)
        os.replace(tmp, self.videos)

    def read_videos(self) -> list[VideoRef]:
        return from_table(pq.read_table(self.videos), VideoRef)

    def read_sample_key(self) -> str | None:
        meta = pq.read_schema(self.videos).metadata or {}
        value = meta.get(_SAMPLE_KEY)
        return value.decode() if value else None

    # --- jsonl side records -----------------------------------------------------------------
    def write_quarantine(self, records: Iterable[QuarantineRecord]) -> None:
        _write_jsonl(self.quarantine, (r.model_dump(mode="json") for r in records))

    def read_quarantine(self) -> list[QuarantineRecord]:
        return [QuarantineRecord.model_validate(r) for r in _read_jsonl(self.quarantine)]

    def write_skipped(self, records: Iterable[VideoSkip]) -> None:
        _write_jsonl(self.skipped, (r.model_dump(mode="json") for r in records))

    def read_skipped(self) -> list[VideoSkip]:
        return [VideoSkip.model_validate(r) for r in _read_jsonl(self.skipped)]

    # --- prompts ----------------------------------------------------------------------------
    def write_prompts(self, templates: dict[str, str]) -> None:
        self.prompts_dir.mkdir(parents=True, exist_ok=True)
        for name, text in templates.items():
            atomic_write_text(self.prompts_dir / f"{name}.txt", text)

    def read_prompts(self) -> dict[str, str]:
        if not self.prompts_dir.exists():
            return {}
        return {p.stem: p.read_text(encoding="utf-8") for p in sorted(self.prompts_dir.glob("*.txt"))}


def atomic_write_text(path: Path, text: str) -> None:
    """Temp file then rename: a reader (or a resumed build) sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    atomic_write_text(path, text)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

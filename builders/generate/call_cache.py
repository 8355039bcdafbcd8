"""Resume state of a build in SQLite: every model call's result, and every finished video.

Each model call is keyed by a hash of everything that determines its output (model and revision,
prompt version, video hash and frame indices, inputs, sampling parameters, seed), so a re-run finds
its completed calls and never repeats them. WAL mode and one transaction per batch make a `kill -9`
lose at most the batch in flight. Transient call errors (HTTP timeouts, ...) are logged but not
cached as results, so a resumed run retries them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY, stage TEXT NOT NULL, video_uid TEXT NOT NULL,
    text TEXT NOT NULL, finish_reason TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS call_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, stage TEXT NOT NULL,
    video_uid TEXT NOT NULL, error TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    seq INTEGER PRIMARY KEY, video_uid TEXT NOT NULL, status TEXT NOT NULL, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER NOT NULL, n INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (seq, n));
CREATE TABLE IF NOT EXISTS stage_counts (
    process TEXT NOT NULL, stage TEXT NOT NULL, counts TEXT NOT NULL, PRIMARY KEY (process, stage));
"""
StageTotals = dict[str, dict[str, int]]  # stage -> {"calls": n, "cached": n, ...}


@dataclass(frozen=True)
class CachedCall:
    text: str
    finish_reason: str


class CallCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CallCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- run spec ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- calls ------------------------------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, CachedCall]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, CachedCall] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, text, finish in self._db.execute(
                f"SELECT key, text, finish_reason FROM calls WHERE key IN ({marks})", chunk
            ):
                out[key] = CachedCall(text, finish)
        return out

    def put_many(self, rows: Iterable[tuple[str, str, str, str, str]],
                 counts: tuple[str, StageTotals] | None = None) -> None:
        """Store (key, stage, video_uid, text, finish_reason) rows in one transaction, with the calling
        process's stage counts (`save_counts`) when given: a call is counted exactly when it is stored."""
        now = time.time()
        with self._tx():
            self._db.executemany(
                "INSERT OR REPLACE INTO calls (key, stage, video_uid, text, finish_reason, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(*r, now) for r in rows],
            )
            if counts is not None:
                self._write_counts(*counts)

    # --- stage counts -----------------------------------------------------------------------
    def save_counts(self, process: str, totals: StageTotals) -> None:
        """Record one process's stage counts so far (replacing its earlier record). A resumed build runs
        in several processes; build.json sums them all (`stage_totals`), not just the last one's."""
        with self._tx():
            self._write_counts(process, totals)

    def _write_counts(self, process: str, totals: StageTotals) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO stage_counts (process, stage, counts) VALUES (?, ?, ?)",
            [(process, stage, json.dumps(c, sort_keys=True)) for stage, c in totals.items()],
        )

    def stage_totals(self) -> StageTotals:
        """Every process's stage counts, summed per stage and field."""
        out: StageTotals = {}
        for stage, counts in self._db.execute("SELECT stage, counts FROM stage_counts"):
            into = out.setdefault(stage, {})
            for k, v in json.loads(counts).items():
                into[k] = into.get(k, 0) + int(v)
        return out

    def log_errors(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Record (key, stage, video_uid, error) of calls that failed at the transport level."""
        now = time.time()
        with self._tx():
            self._db.executemany(
                "INSERT INTO call_errors (key, stage, video_uid, error, created) VALUES (?, ?, ?, ?, ?)",
                [(*r, now) for r in rows],
            )

    # --- videos -----------------------------------------------------------------------------
    def mark_video(self, seq: int, video_uid: str, status: str, summary: dict[str, Any],
                   quarantine: list[dict[str, Any]]) -> None:
        """Record a finished (or skipped) video and its quarantined outputs atomically."""
        with self._tx():
            self._db.execute("DELETE FROM quarantine WHERE seq = ?", (seq,))
            self._db.executemany(
                "INSERT INTO quarantine (seq, n, record) VALUES (?, ?, ?)",
                [(seq, n, json.dumps(r, ensure_ascii=False)) for n, r in enumerate(quarantine)],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO videos (seq, video_uid, status, summary) VALUES (?, ?, ?, ?)",
                (seq, video_uid, status, json.dumps(summary, sort_keys=True)),
            )

    def finished_videos(self) -> dict[int, tuple[str, str, dict[str, Any]]]:
        """seq -> (video_uid, status, summary)."""
        return {
            seq: (uid, status, json.loads(summary))
            for seq, uid, status, summary in self._db.execute("SELECT seq, video_uid, status, summary FROM videos")
        }

    def quarantined(self) -> list[dict[str, Any]]:
        return [json.loads(r) for (r,) in self._db.execute("SELECT record FROM quarantine ORDER BY seq, n")]

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")

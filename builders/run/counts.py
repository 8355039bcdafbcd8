"""Pair counts for build.json, computed from the written rows (never from in-memory tallies, which
a resumed or merged run would not have in full)."""

from __future__ import annotations

import pyarrow as pa

from videosavi.schemas import BuildCounts


def add_pair_counts(counts: BuildCounts, table: pa.Table) -> None:
    counts.pairs = table.num_rows
    for column, target in (("source", counts.pairs_by_source), ("question_type", counts.pairs_by_question_type),
                           ("severity", counts.pairs_by_severity)):
        target.clear()
        for value in table.column(column).to_pylist():
            target[value] = target.get(value, 0) + 1

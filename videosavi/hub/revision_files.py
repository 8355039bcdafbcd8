"""The file set of one published revision, assembled in a staging folder.

```
README.md                       dataset card (YAML configs + dataset_info, statistics, plots, how to load)
data/train-0000k-of-0000n.parquet   the pairs (config `default`) in TRL's conversational preference form
                                    (schemas/published.py: `prompt`, `chosen`, `rejected` as messages, the
                                    texts under `chosen_text`/`rejected_text`), one shard per build shard
swift/train-0000k-of-0000n.parquet  the same pairs in ms-swift's DPO format (config `swift`)
videos.parquet                  the sampled video manifest
build.json                      config, model and revision, prompt hashes, seed, counts, timings
quarantine_summary.json         quarantined outputs by stage/reason (+ a few short examples), skipped videos
prompts/*.txt                   the prompt templates used
plots/*.png                     the card's plots
```

Working state of the run (`parts/`, `cache.sqlite`) and the raw quarantine/skip logs are not
published: the raw model text can be long and is of use only to whoever debugs the build.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from videosavi.cards.dataset_card import CardInputs, render_dataset_card
from videosavi.cards.metadata import ConfigSpec
from videosavi.cards.plots import render_plots
from videosavi.cards.stats import CardStats, card_stats
from videosavi.formats.published_rows import published_rows
from videosavi.formats.swift_rows import SwiftDpoRow, swift_rows
from videosavi.hub.validate import ValidatedRun
from videosavi.schemas import PreferencePair, QuarantineRecord, VideoSkip
from videosavi.schemas.arrow import arrow_schema
from videosavi.schemas.published import PublishedPair

SWIFT_DIR = "swift"
QUARANTINE_SUMMARY = "quarantine_summary.json"
EXAMPLES_PER_KIND = 2
MAX_EXAMPLES = 20
EXAMPLE_CHARS = 300


def _place(src: Path, dest: Path) -> None:
    """Hard-link when possible (no copy of large shards), else copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def side_records_summary(quarantine: list[QuarantineRecord], skipped: list[VideoSkip]) -> dict[str, Any]:
    """Counts of quarantined outputs (by stage and reason) and skipped videos, plus a few short
    examples of the malformed text so a reader can see what failed (pure)."""
    by_pair = Counter((q.stage, q.reason) for q in quarantine)
    examples: list[dict[str, Any]] = []
    shown: Counter[tuple[str, str]] = Counter()
    for q in quarantine:
        key = (q.stage, q.reason)
        if shown[key] >= EXAMPLES_PER_KIND or len(examples) >= MAX_EXAMPLES:
            continue
        shown[key] += 1
        text = q.raw_text if len(q.raw_text) <= EXAMPLE_CHARS else q.raw_text[:EXAMPLE_CHARS] + "..."
        examples.append({"stage": q.stage, "reason": q.reason, "video_uid": q.video_uid, "attempts": q.attempts,
                         "raw_text": text})
    return {
        "quarantined": {
            "total": len(quarantine),
            "by_stage": dict(sorted(Counter(q.stage for q in quarantine).items())),
            "by_reason": dict(sorted(Counter(q.reason for q in quarantine).items())),
            "by_stage_reason": [{"stage": s, "reason": r, "count": n} for (s, r), n in sorted(by_pair.items())],
            "examples": examples,
        },
        "skipped_videos": {
            "total": len(skipped),
            "by_reason": dict(sorted(Counter(s.reason for s in skipped).items())),
        },
    }


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def assemble_revision(run: ValidatedRun, staging: Path, *, repo: str, tag: str,
                      previous: CardStats | None = None, previous_tag: str | None = None,
                      history: dict[str, CardStats] | None = None) -> list[ConfigSpec]:
    """Write every file of the revision under `staging`; returns the configs the card declares.
    `history` holds the earlier iterations (oldest first) for the trend; it defaults to `previous`."""
    staging.mkdir(parents=True, exist_ok=True)
    src = run.run.path
    schema = arrow_schema(PreferencePair)  # an older build's shard is read with the columns it predates as null
    _place(run.run.videos, staging / "videos.parquet")
    _place(run.run.build_json, staging / "build.json")
    for name, text in run.prompts.items():
        (staging / "prompts").mkdir(exist_ok=True)
        (staging / "prompts" / f"{name}.txt").write_text(text, encoding="utf-8")
    side = side_records_summary(run.quarantine, run.skipped)
    _write_json(staging / QUARANTINE_SUMMARY, side)

    derived: dict[str, tuple[Callable[[pa.Table, str | None], pa.Table], type[BaseModel]]] = {
        "data": (published_rows, PublishedPair), SWIFT_DIR: (swift_rows, SwiftDpoRow)}
    sizes = {name: [0, 0] for name in derived}
    for rel in run.shards:
        pairs = pq.read_table(src / rel, schema=schema)
        for name, (convert, _model) in derived.items():
            table = convert(pairs, run.prompts.get("answer"))
            dest = staging / name / Path(rel).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, dest)
            sizes[name][0] += table.nbytes
            sizes[name][1] += dest.stat().st_size
    configs = [
        ConfigSpec("default", "data/train-*.parquet", PublishedPair, run.table.num_rows, *sizes["data"]),
        ConfigSpec(SWIFT_DIR, f"{SWIFT_DIR}/train-*.parquet", SwiftDpoRow, run.table.num_rows, *sizes[SWIFT_DIR]),
    ]
    stats = card_stats(run.table)
    if history is None:
        history = {previous_tag or "previous": previous} if previous is not None else {}
    plots = render_plots(stats, staging, label=tag, previous=previous, previous_label=previous_tag, history=history)
    card = render_dataset_card(CardInputs(
        repo=repo, tag=tag, info=run.info, stats=stats, configs=configs, plots=plots, side_records=side,
        previous=previous, previous_tag=previous_tag if previous is not None else None, history=history,
    ))
    (staging / "README.md").write_text(str(card), encoding="utf-8")
    return configs

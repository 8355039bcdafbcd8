"""`savi bench report`: the paper's Table 1 / Figure 3 from a folder of `savi bench` results, and the
scores in each model's card as Hub evaluation results.

```
REPORT/table.md           scores by model (base, iter1, ...) with the change over the base, in percent
REPORT/table.json         the same numbers, and which results file each row came from
REPORT/scores.png         Figure 3: each benchmark over the iterations
REPORT/cards/<label>.md   each model's card with its `model-index` (validated by parsing it back)
```
With `cards=True`, the card in each evaluated model folder (the README.md `savi train` wrote into
`merged/`) gets the same metadata and Evaluation section, written beside and renamed into place; the
rest of the card is left as it was. Everything is regenerated from the results files, never edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from videosavi.cards.bench_plots import plot_bench_table
from videosavi.cards.bench_table import BenchTable, Reference, bench_table, table_markdown
from videosavi.cards.eval_results import card_with_eval_results, check_card
from videosavi.errors import BenchError
from videosavi.run_dir import atomic_write_text
from videosavi.schemas.bench import BenchResults
from videosavi.workflows.bench.paper import PAPER_BENCHMARKS
from videosavi.workflows.bench.results_file import all_results

PAPER_ROWS = [
    Reference("InternVL2.5, paper", {b.name: b.baseline for b in PAPER_BENCHMARKS}),
    Reference("VideoSAVi, paper", {b.name: b.videosavi for b in PAPER_BENCHMARKS}),
]


@dataclass
class ReportResult:
    folder: Path
    table_md: Path
    table_json: Path
    figure: Path
    card_copies: list[Path] = field(default_factory=list)
    cards_updated: list[Path] = field(default_factory=list)
    rows: int = 0


def write_bench_report(results_dir: Path, out: Path | None = None, *, base: str | None = None,
                       update_cards: bool = True, paper_rows: bool = True) -> ReportResult:
    found = all_results(Path(results_dir))
    results = [r for _, r in found]
    try:
        table = bench_table(results, base=base, order=[b.task for b in PAPER_BENCHMARKS],
                            references=PAPER_ROWS if paper_rows else None)
    except ValueError as exc:
        raise BenchError(str(exc)) from exc
    folder = Path(out) if out is not None else Path(results_dir) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    md = table_markdown(table)
    rep = ReportResult(folder=folder, table_md=folder / "table.md", table_json=folder / "table.json",
                       figure=folder / "scores.png", rows=len(table.rows))
    atomic_write_text(rep.table_md, md)
    payload = {
        "base": table.base,
        "columns": [{"task": c, "title": table.titles[c]} for c in table.columns],
        "rows": [{"label": r.label, "iteration": r.iteration, "model": r.model, "revision": r.revision,
                  "results_file": str(p), "scores": {t: {"percent": round(c.percent, 4),
                                                         "delta": None if c.delta is None else round(c.delta, 4),
                                                         "n": c.n, "limited": c.limited}
                                                     for t, c in r.cells.items()}}
                 for r, p in zip(table.rows, _files_by_row(found, table), strict=True)],
    }
    atomic_write_text(rep.table_json, json.dumps(payload, indent=2) + "\n")
    plot_bench_table(table, rep.figure)
    for _, res in found:
        card_path = Path(res.model.card) if res.model.card else None
        original = card_path.read_text(encoding="utf-8") if card_path is not None and card_path.is_file() else None
        try:
            text = card_with_eval_results(original, res, md, model_name=None if original else res.label)
            check_card(text, res)
        except ValueError as exc:
            where = card_path if original is not None else f"the card of {res.label}"
            raise BenchError(f"cannot put the scores of {res.label} into {where}: {exc}") from exc
        copy = folder / "cards" / f"{res.label}.md"
        atomic_write_text(copy, text)
        rep.card_copies.append(copy)
        if update_cards and card_path is not None and original is not None:
            atomic_write_text(card_path, text)
            rep.cards_updated.append(card_path)
    return rep


def _files_by_row(found: list[tuple[Path, BenchResults]], table: BenchTable) -> list[Path]:
    by_label = {r.label: p for p, r in found}
    return [by_label[row.label] for row in table.rows]

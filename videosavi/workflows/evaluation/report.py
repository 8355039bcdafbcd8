"""The report of `savi eval judge`: judgements -> the error table (JSON, Markdown) and its plot.

Builders judge, curation counts, cards draw; this workflow writes the three next to the judgements,
so a table is always regenerated from the stored verdicts and never edited by hand.
"""

from __future__ import annotations

import json

from videosavi.cards.eval_plots import plot_error_table
from videosavi.curation.eval_table import ErrorTable, error_table, table_markdown
from videosavi.run_dir import atomic_write_text
from videosavi.workflows.evaluation.eval_dir import JudgeDir
from videosavi.workflows.evaluation.judge import JudgeResult


def write_report(result: JudgeResult, judge_dir: JudgeDir) -> ErrorTable:
    """Write table.json, table.md and errors.png under `judge_dir`; returns the table."""
    table = error_table(result.records, result.labels)
    payload = {"judge": result.info.model_dump(mode="json"), "table": table.model_dump(mode="json")}
    atomic_write_text(judge_dir.table_json, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    info = result.info
    head = (f"Errors found by `{info.judge.name_or_path}` (revision `{info.judge.revision}`, judge prompt "
            f"`{info.prompt_hash}`) in the answers to eval set `{info.set_id}` (questions "
            f"`{info.question_version}`).\n\n")
    atomic_write_text(judge_dir.table_md, head + table_markdown(table))
    plot_error_table(table, judge_dir.plot)
    return table

"""The summary table of a finished build, from `build.json` (the single record of its counts).

`savi build`, `savi merge-shards` and the demo print it; it lives below the commands so the demo (a
workflow) can use it without reaching up into the CLI.
"""

from __future__ import annotations

from pathlib import Path


def print_summary(run_dir: Path) -> None:
    """A rich table of what a run produced (from build.json, the single record of counts)."""
    from rich.console import Console
    from rich.table import Table

    from videosavi.run_dir import RunDir

    info = RunDir(run_dir).read_build_info()
    c = info.counts
    table = Table(title=f"{info.name} iteration {info.iteration} -> {run_dir}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("model", f"{info.model.name_or_path} ({info.model.revision})")
    table.add_row("videos", f"{c.videos_sampled} sampled, {c.videos_done} done, {c.videos_skipped} skipped")
    table.add_row("questions", str(c.questions))
    table.add_row("pairs", str(c.pairs))
    for label, d in (("by source", c.pairs_by_source), ("by question type", c.pairs_by_question_type),
                     ("by severity", c.pairs_by_severity), ("skipped videos", c.skip_reasons),
                     ("no pair (reason)", c.no_pair_reasons), ("filtered (reason)", c.filtered)):
        if d:
            table.add_row(label, ", ".join(f"{k}: {v}" for k, v in sorted(d.items())))
    if c.sources:
        table.add_row("requested -> delivered", ", ".join(
            f"{k}: {f.requested_pairs} -> {f.delivered_pairs}" for k, f in c.sources.items()))
        reserve = {k: f for k, f in c.sources.items() if f.reserve_videos_used or f.reserve_videos_unused}
        if reserve:
            table.add_row("reserve videos", ", ".join(
                f"{k}: {f.reserve_videos_used} used" + (f" ({f.reserve_videos_unused} not needed)"
                                                       if f.reserve_videos_unused else "")
                for k, f in reserve.items()))
        short = {k: f.shortfall_pairs for k, f in c.sources.items() if f.shortfall_pairs}
        if short:
            table.add_row("[red]shortfall[/red]", ", ".join(f"{k}: {n} pairs" for k, n in short.items()))
    quarantined = sum(s.quarantined for s in c.stages.values())
    table.add_row("quarantined outputs", str(quarantined))
    if info.stopped:
        table.add_row("[red]stopped[/red]", info.stopped)
    if info.timings:
        total = info.timings.get("total_s", 0.0)
        rate = c.pairs / total if total else 0.0
        table.add_row("time", f"{total:.1f} s total, {rate:.2f} pairs/s")
    Console().print(table)

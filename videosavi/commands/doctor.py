"""`savi doctor`: a minute of checks before a multi-day run; exit 0 when all pass, 2 on any failure."""

from __future__ import annotations

from typing import Any

import typer

from videosavi.commands._common import friendly_errors
from videosavi.commands.options import CheckModel, Config, DataRoot, LoraTargets, command, location_options
from videosavi.hub_location import HubLocation

STATUS_STYLE = {"ok": "green", "fail": "bold red", "skipped": "yellow"}


@friendly_errors
@location_options("check")
def doctor(
    config: Config = None,
    model: CheckModel = None,
    data_root: DataRoot = None,
    lora_targets: LoraTargets = "all-linear",
    *,
    location: HubLocation,
) -> None:
    """Check config, data root, model, frames, the four stages, LoRA targets and publishing; exit 2 on a failure."""
    import time

    from rich.console import Console

    from videosavi.workflows.doctor import DoctorOptions, passed, run_doctor

    opts = DoctorOptions(config=config, model=model, data_root=data_root, store=location.store,
                         endpoint=location.endpoint, hub=location.hub, lora_targets=lora_targets)
    err = Console(stderr=True)
    t0 = time.perf_counter()
    with err.status("checking") as status:
        rows = run_doctor(opts, progress=lambda msg: status.update(f"checking: {msg}"))
    _print_rows(rows, time.perf_counter() - t0)
    if not passed(rows):
        raise typer.Exit(code=2)


def _print_rows(rows: list[Any], seconds: float) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    failed = sum(r.failed for r in rows)
    title = f"savi doctor: {len(rows) - failed} of {len(rows)} checks passed or skipped in {seconds:.1f} s"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_lines=False)
    table.add_column("check", no_wrap=True, style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for r in rows:
        table.add_row(r.name, f"[{STATUS_STYLE[r.status]}]{r.status}[/]", r.detail, r.fix)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `savi doctor` to the app."""
    command(app, "doctor", doctor)

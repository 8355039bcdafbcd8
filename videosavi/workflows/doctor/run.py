"""`run_doctor`: every check a multi-day run depends on, in about a minute, before it starts.

Config -> data root and each source -> model, frames, the four stages, LoRA targets -> where the
iterations will be published. Each check is one `Check` row; a failed check never stops the others
(except that rows needing the config or the model are skipped without them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from videosavi.builders.generate.stages import check_stage_sections
from videosavi.builders.run.runner import apply_model_override
from videosavi.config import load_config, resolve_data_root
from videosavi.errors import VideosaviError
from videosavi.hub_location import HubLocation
from videosavi.training.lora_targets import ALL_LINEAR
from videosavi.workflows.doctor.check import Check, fail, ok
from videosavi.workflows.doctor.data_checks import check_data
from videosavi.workflows.doctor.model_checks import check_model, frame_size
from videosavi.workflows.doctor.store_checks import check_publishing


@dataclass(frozen=True)
class DoctorOptions:
    config: str | Path | None = None  # None: the bundled demo config
    model: str | None = None  # as `savi-build --model`
    data_root: Path | None = None
    store: Path | None = None
    endpoint: str | None = None
    hub: bool = False
    lora_targets: str = ALL_LINEAR


def run_doctor(opts: DoctorOptions, progress: Callable[[str], None] | None = None) -> list[Check]:
    HubLocation(store=opts.store, endpoint=opts.endpoint, hub=opts.hub, role="check")  # one place to check
    say = progress or (lambda _msg: None)
    label = str(opts.config or "demo")
    publishing = lambda: check_publishing(store=opts.store, endpoint=opts.endpoint, hub=opts.hub)  # noqa: E731
    try:
        cfg = apply_model_override(load_config(opts.config), opts.model)
        check_stage_sections(cfg)
    except VideosaviError as exc:
        first = str(exc).strip().splitlines()[0]
        return [fail("config", first, "check --config: a YAML file, or a bundled name (demo, videosavi)"), publishing()]
    h, w = frame_size(cfg)
    rows = [ok("config", f"{label}: {len(cfg.sources)} sources, {cfg.frames.num_frames} frames at {h}x{w}, "
                         f"model {cfg.model.name_or_path} ({cfg.model.backend})")]
    say("reading the sources")
    rows += check_data(cfg, resolve_data_root(opts.data_root), label)
    rows += check_model(cfg, opts.lora_targets, label, progress=say)
    say("checking where to publish")
    rows.append(publishing())
    return rows


def passed(rows: list[Check]) -> bool:
    return not any(r.failed for r in rows)

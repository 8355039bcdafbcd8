"""`savi doctor`: check config, data, model, stages, LoRA targets and publishing before a long run.

A workflow (like `videosavi.workflows.demo`): it uses builders, training and hub, and nothing imports it but
the CLI.
"""

from __future__ import annotations

from videosavi.workflows.doctor.check import Check, Status
from videosavi.workflows.doctor.run import DoctorOptions, passed, run_doctor

__all__ = ["Check", "DoctorOptions", "Status", "passed", "run_doctor"]

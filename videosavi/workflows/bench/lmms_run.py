"""One LMMs-Eval run (one model, one task) as a subprocess in its venv, and its results read back.

`python -m lmms_eval` exits 0 even when it fails (a missing module, an unknown task, a model that does
not load, an exception mid-task): success is a results file that holds the task, nothing else. A
failure becomes one BenchError line naming the cause LMMs-Eval logged, and the path of its full log.

Each run writes into a folder of its own, `OUT/lmms-eval/<label>/<task>/`: LMMs-Eval's results JSON and
per-sample log (under the model-named folder it makes), its console log (`lmms-eval.log`) and the exact
command (`command.json`, secrets never in it: an API key travels in the environment).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videosavi.errors import BenchError
from videosavi.workflows.bench.lmms_env import LmmsEval
from videosavi.workflows.bench.model_ref import OPENAI, ModelRef

MARKER = ".videosavi-bench"
LOG = "lmms-eval.log"
_ERROR_LINE = re.compile(r"\|\s*ERROR\s*\|.*? - (.*)$")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)[\w]*): (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DATA_HINTS = ("OfflineModeIsEnabled", "LocalEntryNotFoundError", "Couldn't reach", "ConnectionError",
               "DatasetNotFoundError", "FileNotFoundError: Unable to find", "does not appear to have a file named")
_PROGRESS = re.compile(r"Model Responding:\s+\d+%.*?\|\s*(\d+)/(\d+)")


@dataclass(frozen=True)
class TaskRun:
    task: str
    folder: Path
    results_file: Path
    seconds: float


def task_folder(out: Path, label: str, task: str) -> Path:
    return out / "lmms-eval" / label / task


def command(lmms: LmmsEval, ref: ModelRef, task: str, folder: Path, *, include_paths: list[Path],
            extra_args: dict[str, str], batch_size: int, device: str, limit: int | None) -> list[str]:
    args = {**ref.model_args, **extra_args}
    cmd = [str(lmms.python), "-m", "lmms_eval", "--model", ref.wrapper,
           "--model_args", ",".join(f"{k}={v}" for k, v in args.items()),
           "--tasks", task, "--batch_size", str(batch_size), "--output_path", str(folder.resolve()),
           "--log_samples", "--verbosity", "INFO"]
    if ref.wrapper != OPENAI:
        cmd += ["--device", device]
    if include_paths:
        cmd += ["--include_path", ",".join(str(p.resolve()) for p in include_paths)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    return cmd


def _env(api_key_env: str | None) -> dict[str, str]:
    env = {**os.environ, "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if api_key_env is not None:
        # the openai wrapper reads OPENAI_API_KEY; a local server wants any non-empty key
        env["OPENAI_API_KEY"] = os.environ.get(api_key_env) or "EMPTY"
    return env


def prepare_folder(folder: Path) -> None:
    """An empty folder for one run: a leftover of an earlier (failed or replaced) run of ours is cleared;
    anything else there is refused."""
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise BenchError(f"{folder} exists and was not written by savi bench: move it, or use another --out")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("LMMs-Eval output written by savi bench\n", encoding="utf-8")


def failure_reason(log_text: str) -> str:
    """The cause LMMs-Eval logged: the first exception a traceback ended in (the root cause; LMMs-Eval often
    re-raises it wrapped, e.g. in a RetryError), with its last ERROR line when that says something else."""
    lines = [_ANSI.sub("", line).rstrip() for line in log_text.replace("\r", "\n").splitlines()]
    error = next((m.group(1).replace(" Please set `--verbosity=DEBUG` to get more information.", "").strip()
                  for m in (_ERROR_LINE.search(line) for line in reversed(lines)) if m), None)
    root = next((f"{m.group(1)}: {m.group(2)}" for m in (_EXCEPTION.match(line.strip()) for line in lines) if m),
                None)
    if root and error and root.split(": ", 1)[-1] not in error:
        return f"{root}; then: {error}"
    if root or error:
        return str(root or error)
    tail = [line for line in lines if line.strip()]
    return tail[-1][:300] if tail else "it wrote no log"


def explain(task: str, ref: ModelRef, reason: str, log: Path) -> str:
    if any(h in reason for h in _DATA_HINTS):
        return f"task {task}: its data cannot be reached ({reason[:300]}); LMMs-Eval log: {log}"
    if any(h in reason.lower() for h in ("from_pretrained", "no file named", "safetensor", "checkpoint",
                                         "unrecognized configuration", "mismatch", "from_config")):
        return f"LMMs-Eval could not load model {ref.given} ({reason[:300]}); log: {log}"
    return f"LMMs-Eval failed on task {task} for {ref.label} ({reason[:300]}); log: {log}"


def newest_results(folder: Path) -> Path | None:
    found = sorted(folder.rglob("*_results.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def run_task(lmms: LmmsEval, ref: ModelRef, task: str, folder: Path, *, include_paths: list[Path],
             extra_args: dict[str, str], batch_size: int = 1, device: str = "cpu", limit: int | None = None,
             api_key_env: str | None = None, on_progress: Any = None, timeout_s: float | None = None) -> TaskRun:
    """Run LMMs-Eval on one task; the folder is cleared first and holds its output after."""
    prepare_folder(folder)
    cmd = command(lmms, ref, task, folder, include_paths=include_paths, extra_args=extra_args,
                  batch_size=batch_size, device=device, limit=limit)
    (folder / "command.json").write_text(json.dumps({"argv": cmd}, indent=1) + "\n", encoding="utf-8")
    log = folder / LOG
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as sink:
        try:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=str(folder),
                                    env=_env(api_key_env if ref.wrapper == OPENAI else None))
        except OSError as exc:
            raise BenchError(f"cannot start LMMs-Eval ({lmms.python}): {exc}") from exc
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if on_progress is not None:
                    on_progress(_progress(log))
                if timeout_s is not None and time.perf_counter() - start > timeout_s:
                    proc.kill()
                    proc.wait()
                    raise BenchError(f"LMMs-Eval ran past --timeout ({timeout_s:.0f} s) on task {task}; log: {log}")
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    seconds = time.perf_counter() - start
    results = newest_results(folder)
    if proc.returncode != 0 or results is None or task not in _read_json(results).get("results", {}):
        reason = failure_reason(log.read_text(encoding="utf-8", errors="replace"))
        if proc.returncode != 0 and results is None:
            reason = f"exit {proc.returncode}: {reason}"
        raise BenchError(explain(task, ref, reason, log))
    return TaskRun(task=task, folder=folder, results_file=results, seconds=seconds)


def _progress(log: Path) -> tuple[int, int] | None:
    """(done, total) of LMMs-Eval's 'Model Responding' bar, from the end of its log."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found = _PROGRESS.findall(tail.replace("\r", "\n"))
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

"""LMMs-Eval's results JSON -> our `BenchScore` (pure).

LMMs-Eval keys a task's metrics as `<metric>,<filter>` (`accuracy,none`) with `<metric>_stderr,<filter>`
beside, counts samples in `n-samples[task].effective`, versions tasks in `versions` and names a group's
tasks in `group_subtasks`. The headline metric of a paper benchmark is the one the paper reports
(`paper.py`); of any other task, the first metric its config lists. A group LMMs-Eval gives no score
for (MVBench has no aggregate in its YAML) gets the sample-weighted mean of its tasks' scores, marked
`aggregated_by: videosavi`, when they share one metric.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Literal

from videosavi.errors import BenchError
from videosavi.schemas.bench import BenchScore, Scale
from videosavi.workflows.bench.paper import BY_TASK, benchmark_name


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metric_keys(block: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, filter) of every numeric metric in a task's results block, in order."""
    out = []
    for key, value in block.items():
        if "," not in key or _number(value) is None:
            continue
        metric, flt = key.split(",", 1)
        if metric.endswith(("_stderr", "_stderr_clt", "_stderr_clustered")):
            continue
        out.append((metric, flt))
    return out


def _pick_metric(raw: dict[str, Any], task: str, block: dict[str, Any]) -> tuple[str, str]:
    keys = metric_keys(block)
    if not keys:
        raise BenchError(f"LMMs-Eval reported no numeric metric for task {task}")
    wanted = BY_TASK[task].metric if task in BY_TASK else None
    if wanted is None:
        listed = [m.get("metric") for m in (raw.get("configs", {}).get(task, {}).get("metric_list") or [])
                  if isinstance(m, dict)]
        wanted = next((m for m in listed if any(k == m for k, _ in keys)), None)
    for metric, flt in keys:
        if metric == (wanted or metric):
            return metric, flt
    raise BenchError(f"LMMs-Eval reported no {wanted} for task {task} (it has: {', '.join(k for k, _ in keys)})")


def _scale(task: str, values: list[float]) -> Scale:
    if task in BY_TASK:
        return BY_TASK[task].scale
    return "percent" if any(v > 1.0 for v in values) else "fraction"


def _n(raw: dict[str, Any], task: str) -> int:
    entry = raw.get("n-samples", {}).get(task, {})
    if not isinstance(entry, dict):
        return 0
    value = entry.get("effective", entry.get("original"))
    return int(value) if isinstance(value, (int, float)) else 0


def _group_score(raw: dict[str, Any], group: str) -> tuple[str, str, float, float | None, int, list[str]]:
    """(metric, filter, value, stderr, n, subtasks) of a group without a score of its own."""
    subtasks = [t for t in raw.get("group_subtasks", {}).get(group, []) if t in raw.get("results", {})]
    if not subtasks:
        raise BenchError(f"LMMs-Eval reported no score for {group} and no tasks under it")
    picks = [(t, _pick_metric(raw, t, raw["results"][t])) for t in subtasks]
    metrics = {m for _, (m, _) in picks}
    if len(metrics) != 1:
        raise BenchError(f"group {group} has no single score (its tasks report {', '.join(sorted(metrics))}); "
                         f"evaluate its tasks one by one: {', '.join(subtasks)}")
    metric, flt = picks[0][1]
    weights = [(raw["results"][t][f"{metric},{f}"], _n(raw, t)) for t, (_, f) in picks]
    n = sum(w for _, w in weights)
    value = sum(v * w for v, w in weights) / n if n else sum(v for v, _ in weights) / len(weights)
    return metric, flt, float(value), None, n, subtasks


def score_from_results(raw: dict[str, Any], task: str, *, lmms_eval_version: str, seconds: float,
                       raw_results: str, raw_samples: str | None, limit: int | None = None) -> BenchScore:
    """The `BenchScore` of `task` in one LMMs-Eval results file."""
    block = raw.get("results", {}).get(task)
    if not isinstance(block, dict):
        raise BenchError(f"LMMs-Eval's results hold no task {task}")
    subtasks = list(raw.get("group_subtasks", {}).get(task, []))
    aggregated_by: Literal["lmms-eval", "videosavi"] = "lmms-eval"
    if metric_keys(block):
        metric, flt = _pick_metric(raw, task, block)
        value = float(block[f"{metric},{flt}"])
        stderr = _number(block.get(f"{metric}_stderr,{flt}"))
        n = _n(raw, task) or sum(_n(raw, t) for t in subtasks)
    elif subtasks:
        metric, flt, value, stderr, n, subtasks = _group_score(raw, task)
        aggregated_by = "videosavi"
    else:
        raise BenchError(f"LMMs-Eval reported no numeric metric for task {task}")
    config = raw.get("configs", {}).get(task) or raw.get("configs", {}).get(subtasks[0] if subtasks else "", {})
    version = raw.get("versions", {}).get(task)
    return BenchScore(
        task=task, benchmark=benchmark_name(task), metric=metric, filter=flt, value=value,
        scale=_scale(task, [value]), stderr=stderr if stderr is None or stderr >= 0 else None, n=n,
        task_version=None if version is None else str(version),
        task_hash=(raw.get("task_hashes") or {}).get(task), dataset=(config or {}).get("dataset_path"),
        subtasks=subtasks, aggregated_by=aggregated_by, limit=limit,
        lmms_eval_version=lmms_eval_version,
        evaluated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), seconds=round(seconds, 3),
        raw_results=raw_results, raw_samples=raw_samples,
    )

"""The paper's six benchmarks as LMMs-Eval tasks, and the numbers the paper reports for them.

`--tasks paper` (the default of `savi bench`) means these six; each short name (`mvbench`, ...) also
stands for its task. The task and metric are LMMs-Eval 0.7.3's; `scale` says how that metric is
reported (its aggregation function returns a fraction or a percentage), so every score can be shown
in percent as the paper prints it. EgoSchema's full test set is scored only by its online server: the
500-question subset with public answers (`egoschema_subset`) is the one that scores offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from videosavi.schemas.bench import Scale


@dataclass(frozen=True)
class PaperBenchmark:
    name: str  # as the paper's tables name it
    alias: str  # the short name `--tasks` accepts
    task: str  # the LMMs-Eval task or group
    metric: str
    scale: Scale
    baseline: float  # InternVL2.5 in Table 1
    videosavi: float  # VideoSAVi (iteration 4) in Table 1


PAPER_BENCHMARKS: tuple[PaperBenchmark, ...] = (
    PaperBenchmark("TempCompass", "tempcompass", "tempcompass_multi_choice", "avg_accuracy", "percent", 68.3, 69.1),
    PaperBenchmark("PerceptionTest", "perceptiontest", "perceptiontest_val_mc", "accuracy", "fraction", 62.2, 66.1),
    PaperBenchmark("NeXTQA", "nextqa", "nextqa_mc_test", "exact_match", "fraction", 77.0, 80.6),
    PaperBenchmark("MVBench", "mvbench", "mvbench", "mvbench_accuracy", "percent", 69.8, 74.0),
    PaperBenchmark("EgoSchema", "egoschema", "egoschema_subset", "score", "fraction", 52.0, 58.8),
    PaperBenchmark("LongVideoBench", "longvideobench", "longvideobench_val_v", "lvb_acc", "fraction", 57.8, 59.8),
)
PAPER = "paper"  # `--tasks paper`: all six
BY_TASK = {b.task: b for b in PAPER_BENCHMARKS}
BY_ALIAS = {b.alias: b for b in PAPER_BENCHMARKS}


def expand_tasks(names: list[str]) -> list[str]:
    """`paper` -> the six tasks, a short name -> its task, anything else as given; order kept, no repeats."""
    out: list[str] = []
    for name in names:
        for part in (p.strip() for p in name.split(",")):
            if not part:
                continue
            tasks = [b.task for b in PAPER_BENCHMARKS] if part == PAPER else [BY_ALIAS[part].task if part in
                                                                              BY_ALIAS else part]
            out += [t for t in tasks if t not in out]
    return out


def benchmark_name(task: str) -> str | None:
    """The paper's name for a task (MVBench, ...), or None for any other task."""
    return BY_TASK[task].name if task in BY_TASK else None

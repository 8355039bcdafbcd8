"""Human evaluation of pairs (paper, section 4.2): a blind CSV sheet (or Label Studio tasks) and its key, the
sheet the rater page fills (`rated_sheet`), and scoring of filled sheets and Label Studio exports."""

from __future__ import annotations

from videosavi.workflows.humaneval.agreement import cohen_kappa, fleiss_kappa, wilson_interval
from videosavi.workflows.humaneval.export import ExportResult, export_humaneval
from videosavi.workflows.humaneval.sampling import largest_remainder, select_pairs
from videosavi.workflows.humaneval.score import ScoreReport, score_sheets

__all__ = [
    "ExportResult",
    "ScoreReport",
    "cohen_kappa",
    "export_humaneval",
    "fleiss_kappa",
    "largest_remainder",
    "score_sheets",
    "select_pairs",
    "wilson_interval",
]

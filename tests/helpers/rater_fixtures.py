"""A small human evaluation with real videos, for the rater page and Label Studio tests.

Four pairs on four videos of the `star` source: two H.264 MP4s with clip spans, one MPEG-4 Part 2
MP4 (which browsers do not play: the page shows decoded frames instead) and one whose file is
absent (the page says so). `RATINGS` says how a rater judges each item in terms of the key
(chosen/rejected); `ratings_for(key)` turns it into what the rater clicks on the blind sheet
(A/B), and `EXPECTED` holds the figures `savi humaneval score` must give for them, worked out by hand.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.factories import make_pair
from videosavi.builders.sources.synthetic_video import write_video
from videosavi.curation.stats import pairs_frame
from videosavi.workflows.humaneval import export_humaneval


@dataclass(frozen=True)
class EvalFiles:
    root: Path  # the `star` source's root
    sheet: Path
    key: Path
    key_rows: list[dict[str, str]]  # in sheet order

    @property
    def roots(self) -> dict[str, Path]:
        return {"star": self.root}


VIDEOS = {  # video id -> (codec, clip span)
    "v1": ("libx264", (0.5, 1.5)),
    "v2": ("libx264", (None, None)),
    "v3": ("mpeg4", (0.2, 1.2)),
    "v4": (None, (None, None)),  # never written: missing
}


def make_eval(tmp: Path, fmt: str = "csv", seed: int = 3, wording: str = "first", **export_kw: object) -> EvalFiles:
    """The four-item evaluation; another `wording` of the questions makes another export of the same videos."""
    root = tmp / "star"
    pairs = []
    for i, (vid, (codec, (start, end))) in enumerate(VIDEOS.items()):
        if codec:
            write_video(root / f"{vid}.mp4", num_frames=60, fps=30, codec=codec, seed=i)
        pairs.append(make_pair(video_id=vid, video_path=f"{vid}.mp4", clip_start=start, clip_end=end,
                               question_type="spatial" if i % 2 else "temporal",
                               question=f"What does the shape in {vid} do {wording}?",
                               chosen=f"It moves right in {vid}, then stops.", rejected=f"It jumps up in {vid}."))
    out = tmp / ("eval.json" if fmt == "label-studio" else "eval.csv")
    res = export_humaneval(pairs_frame(pairs), out, tmp / "key.csv", n=4, seed=seed, fmt=fmt, **export_kw)  # type: ignore[arg-type]
    with res.key.open(encoding="utf-8", newline="") as f:
        key_rows = list(csv.DictReader(f))
    return EvalFiles(root, res.sheet, res.key, key_rows)


# Per item in sheet order: (answerable, chosen verdict, rejected verdict, picks the chosen answer?)
RATINGS = [
    ("yes", "accurate", "clear errors", True),  # correct
    ("yes", "accurate", "neither", True),  # not correct: the rejected answer has no clear errors
    ("no", "", "", None),  # not answerable
    ("yes", "accurate", "clear errors", False),  # correct, although the blind pick is the rejected answer
]
# pair correctness 2/4; answerable 3/4; chosen accurate 3/3; rejected clear errors 2/3; blind pick 2/3
EXPECTED = {"overall": (2, 4), "answerable": (3, 4), "chosen_accurate": (3, 3), "rejected_clear_errors": (2, 3),
            "prefers_chosen": (2, 3)}


def ratings_for(key_rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """What the rater gives on the blind sheet for `RATINGS`: verdicts of A and B, and the pick."""
    out = []
    for (answerable, chosen, rejected, picks_chosen), k in zip(RATINGS, key_rows, strict=True):
        if answerable == "no":
            out.append({"question_answerable": "no"})
            continue
        chosen_is = k["chosen_is"]
        other = "B" if chosen_is == "A" else "A"
        out.append({"question_answerable": "yes", f"answer_{chosen_is}_verdict": chosen,
                    f"answer_{other}_verdict": rejected, "better_answer": chosen_is if picks_chosen else other})
    return out


def figures(report: object) -> dict[str, tuple[int, int]]:
    """The report's figures in `EXPECTED`'s shape (of its first rater)."""
    r = report.raters[0]  # type: ignore[attr-defined]
    c = r.criteria
    return {"overall": (r.overall.yes, r.overall.n),
            "answerable": (c["question_answerable"].yes, c["question_answerable"].n),
            "chosen_accurate": (c["chosen_accurate"].yes, c["chosen_accurate"].n),
            "rejected_clear_errors": (c["rejected_clear_errors"].yes, c["rejected_clear_errors"].n),
            "prefers_chosen": (r.prefers_chosen.yes, r.prefers_chosen.n)}

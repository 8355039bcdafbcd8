"""Demo sources: small synthetic videos and manifests in the three real formats, in seconds.

Laid out exactly as `configs/demo.yaml` expects, relative to the data root:

```
star/STAR_train.json        star/videos/<video_id>.mp4
vidal/VIDAL_annotations.json vidal/videos/<folder>/<youtube id>.mp4
webvid/results_2M_train_1.csv webvid/videos/<page_dir>/<videoid>.mp4
```

Each source lists one video more than it ships (`missing_per_source`), so availability is exercised;
STAR has a video cut into two clips and clips asked about twice, as in the real file; one VIDAL video
carries phone-style rotation metadata. Everything follows from the seed: the same call writes the
same manifests and the same video bytes.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from videosavi.builders.sources.synthetic_video import set_mp4_rotation, write_video

SIZES = ((160, 120), (128, 96))
FRAME_RATES = (24, 25, 30)
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_YT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SPATIAL = ["Which object is closest to the left edge?", "What colour is the largest shape?",
            "Which shape is above the others at the start?"]
_TEMPORAL = ["Which shape reaches the right side first?", "What happens after the disc changes direction?",
             "Which shape moves fastest?"]
_CAPTIONS = ["coloured shapes drift across a plain background", "a disc and two boxes bounce around the frame",
             "simple animation of moving geometric shapes", "bright shapes slide slowly over a dark backdrop"]


@dataclass
class DemoData:
    """What `write_demo_data` wrote: counts per source, to check against a config's quotas."""

    root: Path
    videos: dict[str, int] = field(default_factory=dict)  # files written
    listed: dict[str, int] = field(default_factory=dict)  # distinct videos/clips in the manifest
    missing: dict[str, int] = field(default_factory=dict)  # listed without a file
    seconds: float = 0.0


@dataclass(frozen=True)
class _Clip:
    width: int
    height: int
    fps: int
    num_frames: int
    seed: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _clip(rng: np.random.Generator, seed: int) -> _Clip:
    width, height = SIZES[int(rng.integers(len(SIZES)))]
    fps = FRAME_RATES[int(rng.integers(len(FRAME_RATES)))]
    seconds = float(rng.uniform(2.0, 4.0))
    return _Clip(width, height, fps, int(seconds * fps), seed)


def _write(path: Path, clip: _Clip) -> None:
    write_video(path, num_frames=clip.num_frames, fps=clip.fps, width=clip.width, height=clip.height, seed=clip.seed)


def _ident(rng: np.random.Generator, chars: str, n: int, taken: set[str]) -> str:
    while True:
        s = "".join(chars[int(i)] for i in rng.integers(len(chars), size=n))
        if s not in taken:
            taken.add(s)
            return s


def write_star(root: Path, n: int, missing: int, rng: np.random.Generator, seed: int) -> tuple[int, int]:
    """STAR_train.json rows (question_id, video_id, start, end, ...) and Charades-style files."""
    videos = root / "star" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    taken: set[str] = set()
    clips = 0
    for i in range(n + missing):
        vid = _ident(rng, _ID_CHARS, 5, taken)
        clip = _clip(rng, seed * 1000 + i)
        if i < n:
            _write(videos / f"{vid}.mp4", clip)
        start = round(float(rng.uniform(0.0, 0.4)), 2)
        end = round(clip.duration - float(rng.uniform(0.05, 0.4)), 2)
        spans = [(start, end)] + ([(0.1, round(clip.duration / 2, 2))] if i == 0 else [])
        for span in spans:
            clips += 1
            for q in (_SPATIAL[i % 3], _TEMPORAL[i % 3]):  # two questions on one clip, as in STAR
                rows.append(_star_row(len(rows), vid, span, q, rng))
    (root / "star" / "STAR_train.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return n, clips


def _star_row(k: int, vid: str, span: tuple[float, float], question: str, rng: np.random.Generator) -> dict:
    answer = ["the disc", "the box", "the red shape", "the blue shape"][int(rng.integers(4))]
    return {
        "question_id": f"Interaction_T{k % 4 + 1}_{k}",
        "question": question,
        "video_id": vid,
        "start": span[0],
        "end": span[1],
        "answer": answer,
        "choices": [{"choice_id": c, "choice": f"option {c}"} for c in range(4)],
        "situations": {f"{f:06d}": {"rel_pairs": [["o1", "o2"]], "rel_labels": ["r1"], "bbox": [[1.0, 2.0, 3.0, 4.0]]}
                       for f in (3, 9)},
    }


def write_vidal(root: Path, n: int, missing: int, rng: np.random.Generator, seed: int) -> int:
    """VIDAL_annotations.json: one object keyed by YouTube id; files under <folder>/."""
    videos = root / "vidal" / "videos"
    annotations: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for i in range(n + missing):
        yid = _ident(rng, _YT_CHARS, 11, taken)
        folder = f"folder{i % 2:03d}"
        caption = _CAPTIONS[i % len(_CAPTIONS)]
        if i < n:
            path = videos / folder / f"{yid}.mp4"
            _write(path, _clip(rng, seed * 1000 + 100 + i))
            if i == 1:  # a phone short: stored landscape, shown portrait
                set_mp4_rotation(path, 90)
        annotations[yid] = {
            "folder": folder,
            "mplug": caption,
            "polish_mplug": caption.capitalize() + ".",
            "ofa": [caption, "a video of shapes"],
            "raw": f"shapes {i} #animation",
        }
    (root / "vidal").mkdir(parents=True, exist_ok=True)
    (root / "vidal" / "VIDAL_annotations.json").write_text(json.dumps(annotations, indent=1) + "\n", encoding="utf-8")
    return n


def write_webvid(root: Path, n: int, missing: int, rng: np.random.Generator, seed: int) -> int:
    """results_2M_train_1.csv (videoid, contentUrl, duration, page_dir, name); files under <page_dir>/."""
    videos = root / "webvid" / "videos"
    rows = []
    taken: set[str] = set()
    for i in range(n + missing):
        vid = _ident(rng, "0123456789", 10, taken).lstrip("0") or "1"
        page_dir = f"{i // 4 * 50 + 1:06d}_{i // 4 * 50 + 50:06d}"
        clip = _clip(rng, seed * 1000 + 200 + i)
        if i < n:
            _write(videos / page_dir / f"{vid}.mp4", clip)
        rows.append({
            "videoid": vid,
            "contentUrl": f"https://example.com/webvid/{vid}.mp4",
            "duration": f"PT00H00M{round(clip.duration):02d}S",
            "page_dir": page_dir,
            "name": _CAPTIONS[(i + 1) % len(_CAPTIONS)].capitalize(),
        })
    (root / "webvid").mkdir(parents=True, exist_ok=True)
    with open(root / "webvid" / "results_2M_train_1.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["videoid", "contentUrl", "duration", "page_dir", "name"])
        writer.writeheader()
        writer.writerows(rows)
    return n


def write_demo_data(out_dir: str | Path, videos_per_source: int = 6, seed: int = 0,
                    missing_per_source: int = 1) -> DemoData:
    """Write the three demo sources under `out_dir` (the data root); existing demo files are replaced."""
    import time

    if videos_per_source < 1:
        raise ValueError(f"videos_per_source must be >= 1, got {videos_per_source}")
    if missing_per_source < 0:
        raise ValueError(f"missing_per_source must be >= 0, got {missing_per_source}")
    t0 = time.perf_counter()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    out = DemoData(root=root)
    rng = np.random.default_rng(seed)
    n, m = videos_per_source, missing_per_source
    out.videos["star"], out.listed["star"] = write_star(root, n, m, rng, seed)
    out.missing["star"] = m  # one clip per missing video (the two-clip video is always written)
    out.videos["vidal"] = write_vidal(root, n, m, rng, seed)
    out.videos["webvid"] = write_webvid(root, n, m, rng, seed)
    for s in ("vidal", "webvid"):
        out.listed[s], out.missing[s] = n + m, m
    out.seconds = round(time.perf_counter() - t0, 3)
    return out

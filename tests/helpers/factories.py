"""Builders of valid records and run directories for tests that do not need a real build.

Every record goes through the real pydantic models and the real shard writer, so a test that uses
these factories exercises the same validation and layout a build does.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from videosavi.builders.generate.prompts import PromptSet
from videosavi.builders.generate.stages.answer import answer_messages
from videosavi.builders.run import shards
from videosavi.builders.sources.synthetic_video import write_video
from videosavi.builders.version import BUILDER_VERSION
from videosavi.hashing import sha256_file, stable_hash
from videosavi.run_dir import RunDir
from videosavi.schemas import (
    ERROR_TYPES,
    BuildCounts,
    BuildInfo,
    ModelInfo,
    PreferencePair,
    VideoRef,
)
from videosavi.schemas.arrow import from_table
from videosavi.version import __version__

WORDS = (
    "person cup table red door walks sits opens picks left right before after lamp dog ball"
).split()


def make_issue(severity: str = "critical", error_type: str = "spatial_relationship", n: int = 0) -> dict:
    return {
        "statement": f"claim number {n}",
        "reason": "the video shows otherwise",
        "evidence": f"frame {n} shows the cup on the table",
        "severity": severity,
        "error_type": error_type,
    }


def make_pair(**overrides: Any) -> PreferencePair:
    """A valid pair; override any field (derived fields are recomputed unless given; `prompt` is the bundled
    answer template's messages for the question unless given)."""
    fields: dict[str, Any] = {
        "iteration": 1,
        "source": "star",
        "video_id": "6H78U",
        "video_path": "6H78U.mp4",
        "clip_start": None,
        "clip_end": None,
        "video_sha256": "0" * 64,
        "video_num_frames": 300,
        "frame_indices": [0, 100, 200, 299],
        "frame_timestamps": [0.0, 4.0, 8.0, 11.96],
        "question_type": "spatial",
        "question": "Where is the red cup relative to the lamp?",
        "rejected": "The red cup is on the floor.",
        "chosen": "The red cup is on the table, left of the lamp.",
        "critique": "The cup's location is wrong.",
        "issues": [make_issue()],
        "model": "tiny-qwen2-vl",
        "model_revision": "local:0123456789ab",
        "prompt_version": "p0123456789",
        "generation": "{}",
        "builder_version": BUILDER_VERSION,
    }
    fields.update(overrides)
    # as a build makes it: the answer-stage messages of the bundled template (pass prompt=None for an old row)
    fields.setdefault("prompt", answer_messages(PromptSet.load(), fields["question"], len(fields["frame_indices"])))
    return PreferencePair.build(**fields)


def make_pairs(n_videos: int = 3, per_video: int = 6, iteration: int = 1, seed: int = 0,
               sources: tuple[str, ...] = ("star", "vidal", "webvid")) -> list[PreferencePair]:
    """Pairs for several videos, 3 spatial + 3 temporal each (by default), varied but deterministic."""
    rng = random.Random(seed)
    pairs = []
    for v in range(n_videos):
        source = sources[v % len(sources)]
        vid = f"vid{v:04d}"
        for q in range(per_video):
            qtype = "spatial" if q < per_video // 2 else "temporal"
            n_issues = rng.randint(1, 3)
            issues = [
                make_issue(rng.choice(["critical", "minor"]), rng.choice(ERROR_TYPES), k) for k in range(n_issues)
            ]
            rejected = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "."
            chosen = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) + " indeed."
            pairs.append(
                make_pair(
                    iteration=iteration,
                    source=source,
                    video_id=vid,
                    video_path=f"{vid}.mp4",
                    video_sha256=stable_hash(vid, 64).ljust(64, "0")[:64],
                    question_type=qtype,
                    question=f"Question {q} about {vid}: what happens {rng.choice(WORDS)}?",
                    rejected=rejected,
                    chosen=chosen,
                    issues=issues,
                    critique=f"{n_issues} issue(s) found.",
                )
            )
    return pairs


# Real videos for pairs that must decode: 16 frames at 8 fps, 96x64 (wide enough for the frame-index barcode).
VIDEO_FRAMES, VIDEO_FPS, VIDEO_W, VIDEO_H = 16, 8, 96, 64
WHOLE_INDICES = [0, 5, 10, 15]
STAR_CLIP, STAR_CLIP_INDICES = (0.5, 1.5), [4, 6, 8, 10, 12]  # STAR pairs are about frames 4..12 at 8 fps


def pairs_on_real_videos(base: Path, sources: tuple[str, ...] = ("star", "vidal", "webvid")
                         ) -> tuple[dict[str, Path], list[PreferencePair]]:
    """Two pairs on each of three real videos written under `base/videos/<source>/` (the roots it returns),
    each pair carrying its video's sha256 and frame indices; the STAR video's pairs are about a clip of it."""
    roots = {s: base / "videos" / s for s in sources}
    pairs = []
    for n, p in enumerate(make_pairs(n_videos=3, per_video=2, sources=sources)):
        path = roots[p.source] / p.video_path
        if not path.exists():
            write_video(path, num_frames=VIDEO_FRAMES, fps=VIDEO_FPS, width=VIDEO_W, height=VIDEO_H, seed=n + 1)
        clip = STAR_CLIP if p.source == "star" else (None, None)
        indices = STAR_CLIP_INDICES if p.source == "star" else WHOLE_INDICES
        fields = p.model_dump(exclude={"pair_id", "video_uid", "severity", "chosen_words", "rejected_words",
                                       "diff_spans", "created_at", "prompt"})
        fields.update(video_sha256=sha256_file(path), video_num_frames=VIDEO_FRAMES, frame_indices=indices,
                      frame_timestamps=[i / VIDEO_FPS for i in indices], clip_start=clip[0], clip_end=clip[1])
        pairs.append(make_pair(**fields))
    return roots, pairs


def make_build_info(pairs: list[PreferencePair], iteration: int = 1, **overrides: Any) -> BuildInfo:
    counts = BuildCounts(videos_sampled=len({p.video_uid for p in pairs}), pairs=len(pairs))
    counts.videos_done = counts.videos_sampled
    for p in pairs:
        counts.pairs_by_source[p.source] = counts.pairs_by_source.get(p.source, 0) + 1
        counts.pairs_by_question_type[p.question_type] = counts.pairs_by_question_type.get(p.question_type, 0) + 1
        counts.pairs_by_severity[p.severity] = counts.pairs_by_severity.get(p.severity, 0) + 1
    fields: dict[str, Any] = {
        "name": "videosavi-test",
        "iteration": iteration,
        "builder_version": BUILDER_VERSION,
        "videosavi_version": __version__,
        "created_at": "2026-11-23T00:00:00+00:00",
        "seed": 7,
        "num_frames": 4,
        "config": {"name": "videosavi-test"},
        "config_hash": "0" * 16,
        "model": ModelInfo(backend="tiny", name_or_path="tiny-qwen2-vl", revision="local:0123456789ab"),
        "prompt_version": "p0123456789",
        "prompts": PromptSet.load().hashes,  # the templates write_run_dir writes: publishing re-hashes them
        "counts": counts,
    }
    fields.update(overrides)
    return BuildInfo(**fields)


def write_run_dir(path: Path, pairs: list[PreferencePair], iteration: int = 1, pairs_per_shard: int = 1000,
                  **build_overrides: Any) -> RunDir:
    """A finished run directory with the given pairs, as a build would leave it."""
    run = RunDir(path)
    by_video: dict[str, list[PreferencePair]] = {}
    for p in pairs:
        by_video.setdefault(p.video_uid, []).append(p)
    videos = []
    for seq, (_uid, vps) in enumerate(by_video.items()):
        shards.write_video_part(run.path, seq, vps)
        p0 = vps[0]
        videos.append(VideoRef(source=p0.source, video_id=p0.video_id, video_path=p0.video_path,
                               clip_start=p0.clip_start, clip_end=p0.clip_end, sha256=p0.video_sha256,
                               num_frames=p0.video_num_frames))
    names = shards.finalize(run.path, pairs_per_shard)
    run.write_videos(videos)
    run.write_quarantine([])
    run.write_skipped([])
    run.write_prompts(PromptSet.load().templates)  # the bundled templates: training and the swift rows render them
    run.write_build_info(make_build_info(pairs, iteration=iteration, shards=names, **build_overrides))
    return run


def read_pairs(run_dir: Path) -> list[PreferencePair]:
    """A run directory's finalised rows, validated back into models (raises on any invalid row)."""
    return from_table(RunDir(run_dir).read_pairs_table(), PreferencePair)

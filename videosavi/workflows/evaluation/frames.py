"""The frames of eval questions: exactly the stored indices, checked against the stored hashes.

Every model that answers and the judge that grades must see the same pixels, so a missing or
changed video stops the run before any model call (its answers could not be compared with other
iterations'). Decoding runs in the build's crash- and hang-proof worker pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from videosavi.builders.decode.errors import DecodeError
from videosavi.builders.decode.frames import decode_at_indices
from videosavi.builders.decode.pool import FrameDecoderPool
from videosavi.builders.decode.source_files import source_path
from videosavi.errors import DatasetError
from videosavi.hashing import sha256_file
from videosavi.schemas.evaluation import EvalQuestion, EvalSetInfo

DECODE_TIMEOUT_S = 120.0
_EXAMPLES = 3


def video_path(question: EvalQuestion, info: EvalSetInfo, data_root: Path) -> Path:
    """The question's video under its source's root; `OutsideRootError` if a link leads out of it."""
    root = info.source_roots.get(question.source)
    if root is None:
        raise DatasetError(f"the eval set names no root for source {question.source!r}")
    return source_path(Path(data_root) / root, question.video_path,
                       follow_symlinks=question.source in info.follow_symlinks)


def check_videos(questions: Iterable[EvalQuestion], info: EvalSetInfo, data_root: Path) -> None:
    """Every eval video is present under `data_root`, inside its root, with the hash the set recorded."""
    problems: list[str] = []
    seen: dict[Path, str] = {}
    for q in questions:
        try:
            path = video_path(q, info, data_root)
        except DecodeError as exc:
            problems.append(f"{q.video_uid} ({exc.reason}: {exc})")
            continue
        if path not in seen:
            seen[path] = sha256_file(path) if path.is_file() else "missing"
        if seen[path] != q.video_sha256:
            problems.append(f"{q.video_uid} ({'missing' if seen[path] == 'missing' else 'content changed'}: {path})")
    if problems:
        raise DatasetError(
            f"{len(problems)} eval question(s) lack their exact video under {data_root}, e.g. "
            + "; ".join(problems[:_EXAMPLES]) + ": pass the --data-root the set was made with"
        )


def decoded_questions(questions: list[EvalQuestion], info: EvalSetInfo, data_root: Path, *, workers: int = 2,
                      prefetch: int = 8) -> Iterator[tuple[EvalQuestion, Any]]:
    """(question, frames array | DecodeError) in question order, at most `prefetch` ahead."""
    resize = tuple(info.resize) if info.resize else None
    by_id = {q.question_id: q for q in questions}
    tasks = ((q.question_id, video_path(q, info, data_root), list(q.frame_indices), resize) for q in questions)
    with FrameDecoderPool(workers=workers, timeout_s=DECODE_TIMEOUT_S, task_fn=decode_at_indices) as pool:
        for qid, out in pool.decode_many(tasks, prefetch=prefetch):
            yield by_id[qid], out


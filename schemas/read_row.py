"""A row read back from a published revision is untrusted until these checks pass.

Anyone who can commit to a store or a Hub repository can put any value in any column, so the readers
(`savi train`, `savi export`, the previous descriptions of a retrospective build) check each field
they use against the schema's rules and sane bounds before it reaches a decoder, a file system call
or an allocation: frame indices inside the video (`[-1, 10**12]` would ask a decoder for a frame a
trillion frames in), finite clip spans, a safe relative path whose parts a file system accepts,
texts and prompts of bounded size. A bad row is skipped with a reason code and counted, like a row
whose video is missing; the reason codes are part of the counts, so never rename one. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from pydantic import TypeAdapter, ValidationError

from videosavi.schemas.messages import ChatMessage, video_blocks
from videosavi.schemas.paths import check_relative_posix_path

BAD_PATH = "bad_path"
BAD_FRAME_INDICES = "bad_frame_indices"
BAD_CLIP_SPAN = "bad_clip_span"
BAD_TEXT = "bad_text"
BAD_PROMPT = "bad_prompt"
BAD_FIELD = "bad_field"
ROW_REASONS = (BAD_PATH, BAD_FRAME_INDICES, BAD_CLIP_SPAN, BAD_TEXT, BAD_PROMPT, BAD_FIELD)

MAX_FRAMES_PER_ROW = 4096  # the paper samples 32; a video block of more frames than this is not a prompt
MAX_FRAME_INDEX = 2**31 - 1
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255  # what Linux, macOS and Windows file systems accept for one path component
MAX_ID_CHARS = 256
MAX_QUESTION_CHARS = 20_000
MAX_ANSWER_CHARS = 200_000
MAX_PROMPT_CHARS = 400_000
SOURCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")

_PROMPT = TypeAdapter(list[ChatMessage])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def path_problem(value: Any) -> str | None:
    """Why `video_path` cannot name a file under a root, or None."""
    if not isinstance(value, str) or len(value) > MAX_PATH_CHARS:
        return f"video_path is not a path of at most {MAX_PATH_CHARS} characters"
    try:
        check_relative_posix_path(value)
        too_long = [p for p in value.split("/") if len(p.encode("utf-8")) > MAX_NAME_BYTES]
    except (ValueError, UnicodeEncodeError) as exc:
        return f"video_path: {str(exc)[:200]}"
    if too_long:
        return f"video_path has a part of {len(too_long[0].encode('utf-8'))} bytes (file systems take {MAX_NAME_BYTES})"
    return None


def frame_indices_problem(indices: Any, num_frames: Any = None) -> str | None:
    """Why `frame_indices` cannot be decoded from the video, or None."""
    if not isinstance(indices, (list, tuple)) or not 1 <= len(indices) <= MAX_FRAMES_PER_ROW:
        return f"frame_indices is not a list of 1 to {MAX_FRAMES_PER_ROW} frame numbers"
    if not all(_is_int(i) and 0 <= i <= MAX_FRAME_INDEX for i in indices):
        bad = next(i for i in indices if not (_is_int(i) and 0 <= i <= MAX_FRAME_INDEX))
        return f"frame_indices holds {str(bad)[:40]}, not a frame number in [0, {MAX_FRAME_INDEX}]"
    if any(b <= a for a, b in pairwise(indices)):
        return "frame_indices are not strictly increasing"
    if _is_int(num_frames) and num_frames > 0 and indices[-1] >= num_frames:
        return f"frame_indices reach frame {indices[-1]}, but the video has {num_frames} frames"
    return None


def clip_problem(start: Any, end: Any) -> str | None:
    """Why (clip_start, clip_end) is not a span of seconds, or None."""
    for name, value in (("clip_start", start), ("clip_end", end)):
        if value is not None and not (_is_real(value) and math.isfinite(value) and value >= 0):
            return f"{name} is {str(value)[:40]}, not a finite number of seconds >= 0"
    if start is not None and end is not None and end <= start:
        return f"clip_end {end} is not after clip_start {start}"
    return None


def prompt_problem(prompt: Any) -> str | None:
    """Why a stored `prompt` is not one user turn with one video block, or None (absent is fine)."""
    if prompt is None:
        return None
    try:
        messages = _PROMPT.validate_python(prompt)
    except ValidationError as exc:
        return f"prompt is not a list of chat messages ({exc.error_count()} problem(s))"
    size = sum(len(b.text or "") for m in messages for b in m.content)
    if size > MAX_PROMPT_CHARS:
        return f"prompt holds {size} characters (at most {MAX_PROMPT_CHARS})"
    if not messages or messages[-1].role != "user" or video_blocks(messages) != 1:
        return "prompt does not end with one user turn holding one video block"
    return None


_TEXTS = (("question", MAX_QUESTION_CHARS), ("chosen", MAX_ANSWER_CHARS), ("rejected", MAX_ANSWER_CHARS),
          ("description", MAX_ANSWER_CHARS))


def row_problem(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason code, what is wrong) for the first field of `row` that a reader cannot use, or None.
    Only the fields present are checked: each reader selects the columns it uses."""
    source = row.get("source")
    if "source" in row and not (isinstance(source, str) and 0 < len(source) <= 64 and source[0] not in "_-"
                                and set(source) <= SOURCE_CHARS):
        return BAD_FIELD, f"source {str(source)[:40]!r} is not a source name"
    for name in ("pair_id", "video_sha256", "video_uid"):
        if name in row and not (isinstance(row[name], str) and 0 < len(row[name]) <= MAX_ID_CHARS):
            return BAD_FIELD, f"{name} is not a string of 1 to {MAX_ID_CHARS} characters"
    if "video_path" in row:
        problem = path_problem(row["video_path"])
        if problem:
            return BAD_PATH, problem
    if "frame_indices" in row:
        problem = frame_indices_problem(row["frame_indices"], row.get("video_num_frames"))
        if problem:
            return BAD_FRAME_INDICES, problem
    problem = clip_problem(row.get("clip_start"), row.get("clip_end"))
    if problem:
        return BAD_CLIP_SPAN, problem
    for name, limit in _TEXTS:
        value = row.get(name)
        if name in row and not (value is None and name == "description") and not (
                isinstance(value, str) and value.strip() and len(value) <= limit):
            return BAD_TEXT, f"{name} is not a non-empty text of at most {limit} characters"
    if "prompt" in row:
        problem = prompt_problem(row["prompt"])
        if problem:
            return BAD_PROMPT, problem
    return None

"""Re-decode exactly the frames a pair was made from (its stored indices, the build's resize).

A fresh uniform sampling could pick other frames than the model saw when it answered, and DPO would
then optimise answers against a different video. The builder's `decode_at_indices` reads the stored
indices with the same decoder stack the build used.

`load_row_frames(row, video_roots)` is the public entry: a published row (its `source`, `video_path`
and `frame_indices`) plus where each source's videos live on this machine -> the frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videosavi.builders.decode.errors import DecodeError
from videosavi.builders.decode.source_files import source_path
from videosavi.errors import TrainingDataError
from videosavi.schemas.paths import check_relative_posix_path


def row_video_file(row: Mapping[str, Any], video_roots: Mapping[str, str | Path] | None = None) -> Path:
    """The file a row's frames come from: its `video_file` when set (rows `savi train` prepared and
    checked), else `video_roots[row["source"]] / row["video_path"]` (a row as published).

    Published paths are relative to their source's root; one that could leave the root (`..`, an
    absolute path, a symbolic link that leads out of it) or a source with no root is a
    `TrainingDataError` naming the row.
    """
    if row.get("video_file"):
        return Path(row["video_file"])
    source, rel = row.get("source"), row.get("video_path")
    where = f"pair {row.get('pair_id', '?')}"
    if not video_roots:
        raise TrainingDataError(f"{where} has no video_file; pass video_roots={{source: folder}}")
    if source is None or source not in video_roots:
        given = ", ".join(sorted(video_roots)) or "none"
        raise TrainingDataError(f"{where}: no video root for source {source!r} (roots given for: {given})")
    try:
        check_relative_posix_path(str(rel))
        return source_path(Path(video_roots[source]).expanduser(), str(rel))
    except ValueError as exc:
        raise TrainingDataError(f"{where}: video_path {rel!r} is not a safe relative path: {exc}") from exc
    except DecodeError as exc:  # a symbolic link out of the root: never opened
        raise TrainingDataError(f"{where}: {exc}") from exc


def decode_row_frames(video_file: str | Path, frame_indices: list[int],
                      resize: tuple[int, int] | None = None) -> Any:
    """(T, H, W, 3) uint8 frames; a decoder failure is a `TrainingDataError` naming file and reason."""
    from videosavi.builders.decode.frames import DecodeError, decode_at_indices

    try:
        return decode_at_indices(str(video_file), list(frame_indices), resize=resize)
    except DecodeError as exc:
        reason = getattr(exc, "reason", "decode_error")
        raise TrainingDataError(
            f"cannot decode {video_file} ({reason}) at the stored frame indices: a missing or changed file, or "
            f"a decoder that differs from the build's (savi train checks every file's sha256 first); {exc}"
        ) from exc


def load_row_frames(row: Mapping[str, Any], video_roots: Mapping[str, str | Path] | None = None,
                    resize: tuple[int, int] | None = None) -> Any:
    """(T, H, W, 3) uint8 frames of a row at its stored `frame_indices`, from its video under
    `video_roots` (see `row_video_file`); `resize` (H, W) as the build's `frames.resize`."""
    return decode_row_frames(row_video_file(row, video_roots), list(row["frame_indices"]), resize)


def decode_failure(video_file: str | Path, frame_indices: list[int], resize: tuple[int, int] | None) -> str | None:
    """The decoder's reason code if the stored frames cannot be read, else None (frames are dropped)."""
    from videosavi.builders.decode.frames import DecodeError, decode_at_indices

    try:
        decode_at_indices(str(video_file), list(frame_indices), resize=resize)
    except DecodeError as exc:
        return str(getattr(exc, "reason", "decode_error"))
    return None

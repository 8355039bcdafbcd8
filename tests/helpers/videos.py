"""Test videos made on the spot: good ones with known frame counts, and every kind of bad file.

Good videos carry a barcode of each frame's index (`read_barcode(frame) -> index`), so a test can
check *which* frames a decoder returned. All writers take the target path and return it; they are
deterministic (same arguments, same bytes) and take milliseconds for the default sizes.

    from tests.helpers.videos import make_video, make_bad_files, read_barcode

    path = make_video(tmp_path / "a.mp4", num_frames=60, fps=30)        # 2 s, 160x120, h264
    bad = make_bad_files(tmp_path / "bad")                               # {name: (path, reason)}

`BAD_FILES` lists each bad kind with the `DecodeError.reason` the frame decoder must give for it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from videosavi.builders.sources.synthetic_video import (
    BARCODE_BITS,
    BARCODE_CELL,
    encode_silence,
    set_mp4_rotation,
    write_video,
)

__all__ = [
    "BAD_FILES",
    "copy_video",
    "make_audio_longer_mkv",
    "make_audio_only",
    "make_av1",
    "make_bad_files",
    "make_corrupt_mid",
    "make_empty",
    "make_random_bytes",
    "make_rotated",
    "make_text_as_mp4",
    "make_truncated",
    "make_video",
    "read_barcode",
]


def make_video(path: str | Path, num_frames: int = 60, fps: float = 30, width: int = 160, height: int = 120,
               seed: int = 0, **kwargs: object) -> Path:
    """An h264 video with exactly `num_frames` frames; the suffix picks the container (.mp4, .mkv, .mov).

    Extra keyword arguments go to `write_video`: `gop` (keyframe interval), `faststart`,
    `audio_seconds` (add a silent AAC track), `barcode`.
    """
    return write_video(path, num_frames=num_frames, fps=fps, width=width, height=height, seed=seed, **kwargs)


def make_rotated(path: str | Path, degrees: int = 90, **kwargs: object) -> Path:
    """An .mp4 whose display matrix says "rotate by `degrees`" (as FFmpeg reports it), like phone clips."""
    p = make_video(path, **kwargs)  # type: ignore[arg-type]
    set_mp4_rotation(p, degrees)
    return p


def make_audio_longer_mkv(path: str | Path, num_frames: int = 60, fps: float = 30, audio_seconds: float = 3.5,
                          **kwargs: object) -> Path:
    """An .mkv (no frame count in the header) whose audio outlasts the video: duration x fps overshoots."""
    return make_video(Path(path).with_suffix(".mkv"), num_frames=num_frames, fps=fps, audio_seconds=audio_seconds,
                      **kwargs)


def make_av1(path: str | Path, num_frames: int = 30, **kwargs: object) -> Path:
    """An AV1 .mkv: PyAV decodes it, decord 0.6 (FFmpeg 4.1, no AV1 decoder) cannot, so it exercises
    the fallback. AV1 is common among YouTube downloads (VIDAL-10M)."""
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner per encoder otherwise
    return make_video(Path(path).with_suffix(".mkv"), num_frames=num_frames, codec="libsvtav1", **kwargs)


def make_empty(path: str | Path) -> Path:
    p = _parent(path)
    p.write_bytes(b"")
    return p


def make_text_as_mp4(path: str | Path) -> Path:
    """A text file with a video name (what a failed download often leaves behind)."""
    p = _parent(path)
    p.write_text("<html><body>404 Not Found</body></html>\n" * 20, encoding="utf-8")
    return p


def make_random_bytes(path: str | Path, size: int = 20_000, seed: int = 0) -> Path:
    p = _parent(path)
    p.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return p


def make_audio_only(path: str | Path, seconds: float = 2.0) -> Path:
    """A valid .mp4 with one AAC track and no video stream."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        encode_silence(container, stream, seconds)
    return path


def read_barcode(frame: np.ndarray) -> int:
    """The frame index `synthetic_video.draw_barcode` drew (reads the centre of each cell, robust to h264 noise)."""
    c = BARCODE_CELL // 2
    value = 0
    for bit in range(BARCODE_BITS):
        cell = frame[c - 2:c + 2, bit * BARCODE_CELL + c - 2:bit * BARCODE_CELL + c + 2]
        value = (value << 1) | int(cell.mean() > 127)
    return value


def make_truncated(path: str | Path, keep: float = 0.5, faststart: bool = True, num_frames: int = 90) -> Path:
    """The first `keep` of a video's bytes, as an interrupted download leaves it.

    With `faststart` the index (moov) sits at the front and survives, so the container promises frames
    the file lacks; without it the index is cut off and the file cannot be opened at all.
    """
    p = _parent(path)
    tmp = p.with_name(p.name + ".full" + p.suffix)
    make_video(tmp, num_frames=num_frames, faststart=faststart)
    data = tmp.read_bytes()
    tmp.unlink()
    p.write_bytes(data[: max(1, int(len(data) * keep))])
    return p


def make_corrupt_mid(path: str | Path, num_frames: int = 90, seed: int = 1) -> Path:
    """A complete video whose middle 20% of bytes are overwritten with random data.

    The index is intact (the frame count looks right), so the damage shows only while decoding.
    """
    p = make_video(path, num_frames=num_frames)
    data = bytearray(p.read_bytes())
    a, b = int(len(data) * 0.4), int(len(data) * 0.6)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))
    return p


def _parent(path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


# name -> (writer, expected DecodeError.reason)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty.mp4": (make_empty, "empty_file"),
    "text.mp4": (make_text_as_mp4, "not_a_video"),
    "random.mp4": (make_random_bytes, "not_a_video"),
    "audio_only.mp4": (make_audio_only, "no_video_stream"),
    "truncated_faststart.mp4": (lambda p: make_truncated(p, faststart=True), "truncated"),
    "truncated_index_at_end.mp4": (lambda p: make_truncated(p, faststart=False), "truncated"),
    "corrupt_mid.mp4": (make_corrupt_mid, "corrupt"),
}


def make_bad_files(folder: str | Path) -> dict[str, tuple[Path, str]]:
    """Every bad kind in `folder`: {file name: (path, expected reason)}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: (writer(folder / name), reason) for name, (writer, reason) in BAD_FILES.items()}


def copy_video(src: str | Path, dst: str | Path) -> Path:
    """Copy a made video (cheaper than encoding it again)."""
    d = _parent(dst)
    shutil.copyfile(src, d)
    return d

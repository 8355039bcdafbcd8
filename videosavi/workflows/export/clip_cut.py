"""Cut a clip span (STAR's start/end seconds) out of a video into a file of its own, with PyAV.

ms-swift and LLaMA-Factory take whole files and sample frames from all of them, so a row about a
trimmed clip would train on frames outside the clip. The clip is exactly the frames the builder
counted as inside the span (`clip_frame_range`: timestamps in [start, end], ends included), decoded
with the builder's PyAV reader (which applies a phone clip's rotation, as decord does) and
re-encoded with x264 at the source frame rate. Re-encoding is frame-exact where copying packets could
only cut at keyframes.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from videosavi.builders.decode.frame_indices import clip_frame_range
from videosavi.builders.decode.pyav_reader import PyAVReader

CHUNK = 64  # frames decoded per read: memory stays at one chunk whatever the clip length
X264_OPTIONS = {"preset": "veryfast", "crf": "18"}


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: drop a last odd row/column."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def cut_clip(src: str | Path, dest: str | Path, clip_start: float | None, clip_end: float | None) -> int:
    """Write the span's frames to `dest` (.mp4); returns how many. Decode errors propagate as the
    builder's `DecodeError`s; a half-written `dest` is removed."""
    import av

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    written = 0
    try:
        with PyAVReader(src) as reader:
            span = clip_frame_range(reader.num_frames, reader.fps, clip_start, clip_end)
            rate = Fraction(reader.fps).limit_denominator(1001)
            with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
                stream = None
                for at in range(0, len(span), CHUNK):
                    for frame in reader.read(list(span[at:at + CHUNK])):
                        frame = _even(frame)
                        if stream is None:
                            stream = out.add_stream("libx264", rate=rate)
                            stream.height, stream.width = frame.shape[:2]
                            stream.pix_fmt = "yuv420p"
                            stream.options = dict(X264_OPTIONS)
                        packet_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                        packet_frame.pts = written
                        written += 1
                        for packet in stream.encode(packet_frame):
                            out.mux(packet)
                if stream is not None:
                    for packet in stream.encode():
                        out.mux(packet)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return written

"""Encode decoded frames for HTTP model servers (pure functions: arrays in, data URLs out).

OpenAI-compatible servers take media as URLs; data URLs keep the exact frames we decoded (and their
count) instead of letting the server fetch and resample the video itself.
"""

from __future__ import annotations

import base64
import io

import numpy as np

JPEG_QUALITY = 90
VIDEO_URL_FPS = 2


def jpeg_data_url(frame: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """One (H, W, 3) uint8 frame as a `data:image/jpeg;base64,...` URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def mp4_bytes(frames: np.ndarray, fps: int = VIDEO_URL_FPS) -> bytes:
    """(T, H, W, 3) uint8 frames as an H.264 MP4 (MPEG-4 Part 2 where no H.264 encoder exists).

    yuv420p needs even sides, so odd frames are padded by repeating their last row/column.
    """
    import av

    _, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w + pw, h + ph, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return buf.getvalue()


def mp4_data_url(frames: np.ndarray, fps: int = VIDEO_URL_FPS) -> str:
    return "data:video/mp4;base64," + base64.b64encode(mp4_bytes(frames, fps)).decode("ascii")

"""Synthetic videos with moving coloured shapes, written with PyAV: the demo and the tests need real
files without any download.

Every frame carries a barcode of its own index in the top-left corner, so a test can tell *which*
frame a decoder returned without trusting any reference decoder (`tests/helpers/videos.py` reads it back).
Content is a pure function of the seed (numpy's PCG64), and x264 runs single-threaded so the same
call writes the same bytes again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer

BARCODE_BITS = 10  # up to 1023 frames
BARCODE_CELL = 8  # pixels per bit: 8x8 cells survive h264 at the default quality
BARCODE_WIDTH = BARCODE_BITS * BARCODE_CELL

_PALETTE = np.array(
    [[230, 57, 70], [42, 157, 143], [233, 196, 106], [69, 123, 157], [244, 162, 97], [131, 56, 236]],
    dtype=np.uint8,
)


@dataclass(frozen=True)
class Shape:
    """A disc or box moving on a straight line that bounces off the frame edges."""

    kind: str  # "disc" | "box"
    colour: tuple[int, int, int]
    size: int
    x0: float
    y0: float
    vx: float
    vy: float


def _rgb(values: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in values)
    return r, g, b


def random_shapes(rng: np.random.Generator, width: int, height: int, count: int = 3) -> list[Shape]:
    shapes = []
    for i in range(count):
        size = int(rng.integers(max(4, min(width, height) // 8), max(6, min(width, height) // 3)))
        shapes.append(Shape(
            kind="disc" if i % 2 == 0 else "box",
            colour=_rgb(_PALETTE[int(rng.integers(len(_PALETTE)))]),
            size=size,
            x0=float(rng.uniform(0, width - size)),
            y0=float(rng.uniform(BARCODE_CELL + 2, height - size)),
            vx=float(rng.uniform(-3.0, 3.0)),
            vy=float(rng.uniform(-2.0, 2.0)),
        ))
    return shapes


def _bounce(p0: float, v: float, t: int, span: float) -> float:
    """Position on a segment [0, span] after t steps, reflecting at the ends (a triangle wave)."""
    if span <= 0:
        return 0.0
    p = (p0 + v * t) % (2 * span)
    return p if p <= span else 2 * span - p


def render_frame(index: int, width: int, height: int, shapes: list[Shape], background: tuple[int, int, int],
                 barcode: bool = True) -> np.ndarray:
    """One RGB frame (H, W, 3) uint8: background, shapes at their position at `index`, barcode."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = background
    yy, xx = np.ogrid[:height, :width]
    for s in shapes:
        x = int(_bounce(s.x0, s.vx, index, width - s.size))
        y = int(_bounce(s.y0, s.vy, index, height - s.size))
        if s.kind == "disc":
            r = s.size / 2
            mask = (xx - (x + r)) ** 2 + (yy - (y + r)) ** 2 <= r * r
            frame[mask] = s.colour
        else:
            frame[y:y + s.size, x:x + s.size] = s.colour
    if barcode:
        draw_barcode(frame, index)
    return frame


def draw_barcode(frame: np.ndarray, index: int) -> None:
    """Write `index` as BARCODE_BITS black/white cells along the top-left edge (MSB first)."""
    if frame.shape[1] < BARCODE_WIDTH or frame.shape[0] < BARCODE_CELL:
        raise ValueError(f"frames must be at least {BARCODE_WIDTH}x{BARCODE_CELL} to carry a barcode")
    for bit in range(BARCODE_BITS):
        on = (index >> (BARCODE_BITS - 1 - bit)) & 1
        frame[:BARCODE_CELL, bit * BARCODE_CELL:(bit + 1) * BARCODE_CELL] = 255 if on else 0


def write_video(path: str | Path, *, num_frames: int, fps: int | float = 30, width: int = 160, height: int = 120,
                seed: int = 0, barcode: bool = True, codec: str = "libx264", gop: int | None = None,
                faststart: bool = True, audio_seconds: float | None = None, preset: str = "ultrafast") -> Path:
    """Encode `num_frames` frames of moving shapes; the container follows the suffix (.mp4, .mkv, ...).

    `audio_seconds` adds a silent AAC track of that length (longer than the video makes duration x fps
    overshoot the true frame count). `faststart=False` leaves the mp4 index at the end of the file.
    `preset` is x264's: "ultrafast" for tests, "veryfast" (B-frames, CABAC) to resemble web encodes.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shapes = random_shapes(rng, width, height)
    background = _rgb(rng.integers(20, 90, size=3))
    rate = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if faststart and path.suffix.lower() in {".mp4", ".mov", ".m4v"} else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            keyint = gop or 250
            stream.options = {"preset": preset, "crf": "20", "threads": "1",
                              "x264-params": f"keyint={keyint}:min-keyint={min(keyint, 25)}:scenecut=0"}
        audio = None
        if audio_seconds:
            audio = container.add_stream("aac", rate=16000)
            audio.layout = "mono"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(render_frame(i, width, height, shapes, background, barcode),
                                               format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None and audio_seconds:
            encode_silence(container, audio, float(audio_seconds))
    return path


def encode_silence(container: OutputContainer, stream: AudioStream, seconds: float) -> None:
    """Mux `seconds` of mono silence into `stream` (an AAC track of `container`), then flush it."""
    import av

    samples_left = int(seconds * stream.rate)
    pts = 0
    while samples_left > 0:
        n = min(1024, samples_left)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, n), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, pts
        for packet in stream.encode(frame):
            container.mux(packet)
        pts += n
        samples_left -= n
    for packet in stream.encode():
        container.mux(packet)


# --- rotation metadata ------------------------------------------------------------------------------
# Keyed by the angle FFmpeg reports for the matrix (PyAV's `VideoFrame.rotation`, counter-clockwise).
_ROTATION_MATRICES = {
    0: (1, 0, 0, 1),
    90: (0, -1, 1, 0),
    180: (-1, 0, 0, -1),
    270: (0, 1, -1, 0),
}


def set_mp4_rotation(path: str | Path, degrees: int) -> None:
    """Write a display matrix into the video track's `tkhd` box, as phone cameras do.

    `degrees` is the angle FFmpeg (and PyAV's `frame.rotation`) will report, e.g. 90 or -90.
    Players (and decord) show the frame rotated; the coded frames are unchanged. Patching the matrix in
    place needs no re-encode and no ffmpeg binary. Only version-0 `tkhd` boxes (what libavformat
    writes for short files) are handled.
    """
    if degrees % 360 not in _ROTATION_MATRICES:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    degrees %= 360
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"tkhd")
    while at != -1:
        version = data[at + 4]
        if version != 0:
            raise ValueError("only version-0 tkhd boxes can be patched")
        # after 'tkhd': version/flags(4) ctime(4) mtime(4) track_id(4) reserved(4) duration(4)
        # reserved(8) layer(2) alt_group(2) volume(2) reserved(2) -> matrix (9 x 4 bytes)
        matrix_at = at + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 8 + 2 + 2 + 2 + 2
        width_at = matrix_at + 36
        width = struct.unpack(">I", data[width_at:width_at + 4])[0]
        if width:  # the video track (an audio track has width 0)
            a, b, c, d = _ROTATION_MATRICES[degrees]
            fixed = [a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30]
            data[matrix_at:matrix_at + 36] = struct.pack(">9i", *fixed)
            Path(path).write_bytes(bytes(data))
            return
        at = data.find(b"tkhd", at + 4)
    raise ValueError(f"{path} has no video track header to rotate")

"""The frames a pair's model saw, as numbered image files: for readers that take frames, not videos.

The frames are decoded at the row's stored `frame_indices` with the builder's decoders and resized as
the build resized them (`frames.resize` in the revision's build.json), exactly what `savi train`
feeds the model. File names carry the frame index, so the order and the source frame are visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

IMAGE_FORMATS = {"jpg": ("JPEG", {"quality": 95}), "png": ("PNG", {})}


def frame_name(index: int, image_format: str) -> str:
    return f"frame-{index:06d}.{image_format}"


def write_frames(src: str | Path, indices: Sequence[int], folder: str | Path, *, image_format: str = "jpg",
                 resize: tuple[int, int] | None = None) -> list[Path]:
    """Decode `indices` of `src` and write one image per frame into `folder`; returns the paths in order."""
    from PIL import Image

    from videosavi.builders.decode.frames import decode_at_indices

    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    pil_format, options = IMAGE_FORMATS[image_format]
    frames = decode_at_indices(src, list(indices), resize=resize)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in zip(indices, frames, strict=True):
        path = folder / frame_name(int(index), image_format)
        Image.fromarray(frame).save(path, format=pil_format, **options)
        paths.append(path)
    return paths

"""One exported pair, before any library's layout: prompt text, the two answers and its media.

Every format writer takes these rows, so the prompt (the revision's answer template rendered for
the question: what a0 was generated from and what `savi train` trains on) and the media paths are
decided once. A row's media is either one video file (`video`) or the frames the model saw, as image
files in order (`frames`); all paths are absolute and exist once the export is in place. The media
tags are ms-swift's and LLaMA-Factory's alike (`videosavi.formats.swift_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

from videosavi.formats.swift_rows import IMAGE_TAG as IMAGE_TAG
from videosavi.formats.swift_rows import VIDEO_TAG as VIDEO_TAG

FILE_NAME = "train.jsonl"  # the rows, in every format


@dataclass(frozen=True)
class ExportRow:
    pair_id: str
    prompt: str  # the user turn's text, without the media tag
    chosen: str
    rejected: str
    video: str | None = None  # absolute path of the video (or cut clip) file
    frames: tuple[str, ...] | None = None  # absolute paths of the frame images, in order

    def __post_init__(self) -> None:
        if (self.video is None) == (self.frames is None):
            raise ValueError("an export row has either a video or frames")


def tag_count(text: str, tag: str) -> int:
    """How often a media placeholder occurs in a turn (ms-swift and LLaMA-Factory require it to equal the
    number of media entries of that kind)."""
    return text.count(tag)

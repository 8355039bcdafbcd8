"""ShareGPT preference rows, as LLaMA-Factory reads them (its data/README.md, "Preference Dataset" and
"Multimodal Video Dataset" of the sharegpt format).

`conversations` holds the prompt only: one `human` turn, an odd count as a ranking row needs;
`chosen` and `rejected` are single `gpt` turns; `videos` has one entry per `<video>` tag. An entry is a
video file, or, for exported frames, the list of frame images: LLaMA-Factory reads a list of images
as one video (its "processed video frames"), so the model still gets the frames as a video, as it did
when a0 was generated.
"""

from __future__ import annotations

from typing import Any

from videosavi.workflows.export.rows import FILE_NAME, VIDEO_TAG, ExportRow

COLUMNS = {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "videos": "videos"}
TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}


def sharegpt_record(row: ExportRow) -> dict[str, Any]:
    video: str | list[str] = row.video if row.video is not None else list(row.frames or ())
    return {
        "conversations": [{"from": "human", "value": VIDEO_TAG + row.prompt}],
        "chosen": {"from": "gpt", "value": row.chosen},
        "rejected": {"from": "gpt", "value": row.rejected},
        "videos": [video],
    }


def dataset_info(name: str, file_name: str = FILE_NAME) -> dict[str, Any]:
    """LLaMA-Factory's `dataset_info.json` entry for the file: `--dataset_dir OUT --dataset NAME`."""
    return {name: {"file_name": file_name, "formatting": "sharegpt", "ranking": True, "columns": dict(COLUMNS),
                   "tags": dict(TAGS)}}

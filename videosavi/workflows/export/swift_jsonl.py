"""ms-swift's DPO rows (docs: Customization/Custom-dataset.md, "RLHF" and "Multimodal").

`messages` is the conversation with the preferred answer as the last assistant turn,
`rejected_response` the dispreferred answer. Media go in `videos` / `images` (absolute paths), one
`<video>` / `<image>` tag in the user turn per entry. ms-swift reads a video file with its model's own
frame sampler; frames already sampled go in as images, one tag each.
"""

from __future__ import annotations

from typing import Any

from videosavi.workflows.export.rows import IMAGE_TAG, VIDEO_TAG, ExportRow

FILE_NAME = "train.jsonl"


def swift_record(row: ExportRow) -> dict[str, Any]:
    if row.video is not None:
        user, media = VIDEO_TAG + row.prompt, {"videos": [row.video]}
    else:
        frames = list(row.frames or ())
        user, media = IMAGE_TAG * len(frames) + row.prompt, {"images": frames}
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row.chosen}],
        "rejected_response": row.rejected,
        **media,
    }

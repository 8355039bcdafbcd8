"""Chat messages shared by all stages: the video first, then the stage's instruction text."""

from __future__ import annotations


def video_user_message(text: str) -> list[dict]:
    """One user turn holding the video (frames are attached by the backend) and the text."""
    return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]

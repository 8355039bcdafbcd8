"""Keys and seeds of model calls: pure functions of what determines a call's output.

The key makes a call idempotent (the resume cache looks it up); the seed makes sampling
reproducible per call, independent of batching, process or machine.
"""

from __future__ import annotations

from typing import Any

from videosavi.hashing import stable_hash


def call_seed(base_seed: int, iteration: int, video_uid: str, stage: str, slot: int, attempt: int) -> int:
    """A 31-bit seed for one attempt of one call; retries get fresh seeds so they can differ."""
    return int(stable_hash([base_seed, iteration, video_uid, stage, slot, attempt], 8), 16) & 0x7FFFFFFF


def call_key(*, model: str, revision: str, prompt_hash: str, video_sha256: str, frame_indices: list[int],
             messages: list[dict], params: dict[str, Any], json_schema: dict | None, seed: int) -> str:
    """Hash of (model, revision, prompt version, video + frames, inputs, sampling params, seed)."""
    return stable_hash(
        {
            "model": model,
            "revision": revision,
            "prompt": prompt_hash,
            "video": video_sha256,
            "frames": frame_indices,
            "messages": messages,
            "params": params,
            "schema": stable_hash(json_schema) if json_schema is not None else None,
            "seed": seed,
        },
        32,
    )


def video_key(video_sha256: str, frame_indices: list[int]) -> str | None:
    """Names the frames a call shows: the file's content hash and which frames were decoded from it.

    Backends use it to encode a video once for all of its calls (see `GenerationRequest.video_key`);
    None when the file's hash is unknown, so they fall back to hashing the frames themselves.
    """
    if not video_sha256:
        return None
    return "video-" + stable_hash({"sha256": video_sha256, "frames": list(frame_indices)}, 32)

"""Decode a sampled video from exactly the bytes that are hashed, inside its source's root.

A row's `video_sha256` must be the hash of the bytes its frames came from. The sample records a hash
when it is drawn, but a file can be replaced before the build decodes it, or between a crash and its
resume; copying the sample's hash into the rows would then pair one file's hash with another's
frames, silently.

So the decoder worker opens the file once (through the root boundary, `source_files.open_source`),
hashes it through that descriptor and decodes through the same descriptor (`/proc/self/fd/N`), not
through the path: a file renamed over the path meanwhile cannot be what the decoder reads. Reading
the whole video into memory and decoding that buffer would give the same guarantee at the cost of
the whole file in every worker's memory (hundreds of MB for a long video), so instead a rewrite of
the same file in place is caught by comparing the descriptor's `fstat` before hashing and after
decoding: any write changes the change time (`ctime`), which no user call can set back. Either way
the hash, the frames and the file agree, or the video is skipped:

- the hash differs from the sample's: `changed_since_sampling` (the reserve replaces the video);
- the file changed while it was read: `changed_since_sampling` too, with that message.
"""

from __future__ import annotations

import os
from pathlib import Path

from videosavi.builders.decode.errors import ChangedSinceSamplingError, DecodeError
from videosavi.builders.decode.frames import DecodedFrames, Resize, decode_frames
from videosavi.builders.decode.source_files import descriptor_path, open_source, sha256_fd


def _fingerprint(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def decode_sampled_video(shown: str, root: str, rel: str, follow_symlinks: bool, expected_sha256: str | None,
                         num_frames: int, clip_start: float | None = None, clip_end: float | None = None,
                         resize: Resize = None) -> DecodedFrames:
    """The frames of `rel` under `root`, with `sha256` set to the hash of the bytes decoded.

    `shown` is the path errors name; `expected_sha256` is the sample's hash (None: nothing to compare,
    the decoded bytes' hash is simply recorded). Raises `DecodeError`s, as `decode_frames` does.
    """
    fd = open_source(root, rel, follow_symlinks=follow_symlinks)
    try:
        before = _fingerprint(os.fstat(fd))
        digest = sha256_fd(fd)
        if expected_sha256 is not None and digest != expected_sha256:
            raise ChangedSinceSamplingError(
                f"the file's sha256 is {digest[:12]}..., the sample recorded {expected_sha256[:12]}...: it was "
                "replaced or rewritten after sampling", shown)
        via = descriptor_path(fd)
        try:
            decoded = decode_frames(via or str(Path(root) / rel), num_frames, clip_start, clip_end, resize)
        except DecodeError as exc:
            exc.path = shown
            raise
        if _fingerprint(os.fstat(fd)) != before or (via is None and not _same_file(fd, Path(root) / rel)):
            raise ChangedSinceSamplingError("the file changed while it was being decoded", shown)
    finally:
        os.close(fd)
    return DecodedFrames(decoded.frames, decoded.sample, decoded.fps, decoded.duration, decoded.decoder,
                         decoded.fallback_error, sha256=digest)


def _same_file(fd: int, path: Path) -> bool:
    """Without a descriptor path the decoder read `path`: is that still the file that was hashed?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


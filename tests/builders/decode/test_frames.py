"""Frame sampling and decoding on real files made here: indices, timestamps, clip spans, bad files,
the PyAV fallback (rotation, AV1) and the worker pool surviving a crash and a hang."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.videos import (
    make_audio_longer_mkv,
    make_av1,
    make_bad_files,
    make_rotated,
    make_video,
    read_barcode,
)
from videosavi.builders.decode.frames import (
    ClipOutOfRangeError,
    DecodedFrames,
    DecodeError,
    FrameIndexError,
    decode_at_indices,
    decode_frames,
    uniform_indices,
)
from videosavi.builders.decode.pool import FrameDecoderPool


@pytest.fixture(scope="session")
def vids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("frames")
    return {
        "v60": make_video(d / "v60.mp4", num_frames=60, fps=30),
        "v45": make_video(d / "v45.mp4", num_frames=45, fps=25, width=128, height=96, seed=3),
        "gop": make_video(d / "gop.mp4", num_frames=300, fps=30, gop=30, seed=4),
        "rot90": make_rotated(d / "rot90.mp4", 90, num_frames=40, seed=5),
        "rot270": make_rotated(d / "rot270.mp4", -90, num_frames=40, seed=6),
        "mkv": make_audio_longer_mkv(d / "long_audio.mkv", num_frames=60, fps=30, audio_seconds=3.5),
        "av1": make_av1(d / "av1.mkv", num_frames=30),
    }


def barcodes(frames: np.ndarray) -> list[int]:
    return [read_barcode(f) for f in frames]


# --- indices (pure) ---------------------------------------------------------------------------------
def test_uniform_indices_are_spread_strictly_increasing_and_include_both_ends() -> None:
    for total in range(1, 130):
        for n in (1, 2, 3, 8, 16, 32):
            idx = uniform_indices(total, n)
            assert idx == sorted(set(idx)), (total, n)
            assert idx[0] >= 0 and idx[-1] < total
            if total <= n:
                assert idx == list(range(total))  # short videos: every frame, no repeats
            elif n == 1:
                assert idx == [(total - 1) // 2]
            else:
                assert len(idx) == n and idx[0] == 0 and idx[-1] == total - 1
                ideal = np.linspace(0, total - 1, n)
                assert np.abs(np.array(idx) - ideal).max() <= 0.5 + 1e-9


def test_clip_span_maps_seconds_to_frames_inclusive() -> None:
    # 25 fps: frames 13 (0.52 s) .. 30 (1.20 s) lie in [0.5, 1.2]
    idx = uniform_indices(45, 4, fps=25, clip_start=0.5, clip_end=1.2)
    assert idx[0] == 13 and idx[-1] == 30 and len(idx) == 4
    # a clip that ends after the video is cut at the last frame
    assert uniform_indices(45, 3, fps=25, clip_start=1.0, clip_end=99.0)[-1] == 44
    # only an end: from the first frame
    assert uniform_indices(45, 2, fps=25, clip_end=0.4) == [0, 10]
    with pytest.raises(ClipOutOfRangeError) as exc:
        uniform_indices(45, 4, fps=25, clip_start=2.0, clip_end=3.0)
    assert exc.value.reason == "clip_out_of_range"
    with pytest.raises(ValueError):
        uniform_indices(45, 4, fps=None, clip_start=0.1, clip_end=0.5)


# --- decoding good files ----------------------------------------------------------------------------
def test_decode_frames_returns_the_uniform_frames_with_their_timestamps(vids: dict[str, Path]) -> None:
    out = decode_frames(vids["v60"], 8)
    assert out.decoder == "decord" and out.fallback_error is None
    assert out.frames.shape == (8, 120, 160, 3) and out.frames.dtype == np.uint8
    assert out.sample.num_frames == 60 and out.fps == pytest.approx(30.0)
    assert out.sample.frame_indices == uniform_indices(60, 8)
    assert barcodes(out.frames) == out.sample.frame_indices
    assert out.sample.frame_timestamps == pytest.approx([i / 30 for i in out.sample.frame_indices], abs=1e-6)
    assert out.duration == pytest.approx(2.0)


def test_decode_frames_within_a_clip_span(vids: dict[str, Path]) -> None:
    out = decode_frames(vids["v45"], 6, clip_start=0.5, clip_end=1.2)
    assert out.sample.num_frames == 45
    assert all(0.5 <= t <= 1.2 for t in out.sample.frame_timestamps)
    assert out.sample.frame_indices[0] == 13 and out.sample.frame_indices[-1] == 30
    assert barcodes(out.frames) == out.sample.frame_indices


def test_a_clip_shorter_than_n_frames_gives_all_its_frames(vids: dict[str, Path]) -> None:
    out = decode_frames(vids["v60"], 8, clip_start=0.0, clip_end=0.1)  # frames 0, 1, 2, 3 at 30 fps
    assert out.sample.frame_indices == [0, 1, 2, 3]
    assert barcodes(out.frames) == [0, 1, 2, 3]


def test_a_clip_outside_the_video_is_a_skip_with_its_reason(vids: dict[str, Path]) -> None:
    with pytest.raises(ClipOutOfRangeError) as exc:
        decode_frames(vids["v60"], 8, clip_start=5.0, clip_end=6.0)
    assert exc.value.reason == "clip_out_of_range" and exc.value.path == str(vids["v60"])


def test_resize_is_height_width(vids: dict[str, Path]) -> None:
    for decoder in ("decord", "pyav"):
        out = decode_frames(vids["v60"], 4, resize=(48, 64), decoders=(decoder,))
        assert out.frames.shape == (4, 48, 64, 3)


def test_frame_count_comes_from_the_container_not_duration_times_fps(vids: dict[str, Path]) -> None:
    # audio runs 3.5 s, video 2 s: duration x fps would claim 105 frames
    for decoder in ("decord", "pyav"):
        out = decode_frames(vids["mkv"], 8, decoders=(decoder,))
        assert out.sample.num_frames == 60, decoder
        assert barcodes(out.frames) == out.sample.frame_indices


@pytest.mark.parametrize("resize", [None, (72, 96)])
def test_pyav_gives_the_same_frames_as_decord(vids: dict[str, Path], resize: tuple[int, int] | None) -> None:
    for name in ("v60", "gop"):  # "gop": keyframes every 30 frames, so PyAV seeks between targets
        a = decode_frames(vids[name], 16, resize=resize, decoders=("decord",))
        b = decode_frames(vids[name], 16, resize=resize, decoders=("pyav",))
        assert a.sample == b.sample and b.decoder == "pyav"
        diff = np.abs(a.frames.astype(int) - b.frames.astype(int))
        if resize is None:
            assert diff.max() == 0, name  # same FFmpeg conversion: bit-identical
            assert barcodes(b.frames) == b.sample.frame_indices
        else:
            assert diff.mean() < 1.0, name  # each library has its own scaler


@pytest.mark.parametrize("name", ["rot90", "rot270"])
def test_pyav_fallback_applies_rotation_like_decord(vids: dict[str, Path], name: str) -> None:
    a = decode_frames(vids[name], 5, decoders=("decord",))
    b = decode_frames(vids[name], 5, decoders=("pyav",))
    assert a.frames.shape == (5, 160, 120, 3)  # shown portrait: decord applied the display matrix
    assert b.frames.shape == a.frames.shape
    # two decoders (each with its own FFmpeg and colour conversion, SIMD paths differ by CPU): the same
    # picture within rounding, and a rotation applied the wrong way would differ by tens of levels
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 1.0
    ra = decode_frames(vids[name], 5, resize=(64, 64), decoders=("decord",))
    rb = decode_frames(vids[name], 5, resize=(64, 64), decoders=("pyav",))
    assert ra.frames.shape == rb.frames.shape == (5, 64, 64, 3)
    assert np.abs(ra.frames.astype(int) - rb.frames.astype(int)).mean() < 3.0
    # decord 0.6 fails on a rotated clip resized to a portrait shape; the fallback covers it
    portrait = decode_frames(vids[name], 5, resize=(64, 48))
    assert portrait.frames.shape == (5, 64, 48, 3)


def test_decord_failure_falls_back_to_pyav(vids: dict[str, Path]) -> None:
    with pytest.raises(DecodeError):
        decode_frames(vids["av1"], 4, decoders=("decord",))  # decord 0.6 has no AV1 decoder
    out = decode_frames(vids["av1"], 4)
    assert out.decoder == "pyav" and out.fallback_error and out.fallback_error.startswith("decord")
    assert barcodes(out.frames) == out.sample.frame_indices == [0, 10, 19, 29]


def test_decode_at_indices_returns_exactly_those_frames(vids: dict[str, Path]) -> None:
    want = [1, 2, 3, 100, 181, 299]
    for decoders in (("decord", "pyav"), ("pyav",)):
        frames = decode_at_indices(vids["gop"], want, decoders=decoders)
        assert barcodes(frames) == want
    with pytest.raises(FrameIndexError) as exc:
        decode_at_indices(vids["gop"], [5, 300])
    assert exc.value.reason == "index_out_of_range"
    with pytest.raises(ValueError):
        decode_at_indices(vids["gop"], [5, 5])


# --- bad files ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return make_bad_files(tmp_path_factory.mktemp("bad"))


def test_each_bad_file_kind_raises_its_specific_error(bad: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    for name, (path, reason) in bad.items():
        with pytest.raises(DecodeError) as exc:
            decode_frames(path, 8)
        assert exc.value.reason == reason, f"{name}: {exc.value}"
        assert exc.value.path == str(path)
        assert type(exc.value) is not DecodeError  # a specific subclass, not the generic one
    with pytest.raises(DecodeError) as exc:
        decode_frames(tmp_path / "nope.mp4", 8)
    assert exc.value.reason == "missing_file"
    with pytest.raises(DecodeError) as exc:
        decode_frames(tmp_path, 8)
    assert exc.value.reason == "unreadable"


def test_decode_errors_survive_pickling_with_their_reason() -> None:
    from videosavi.builders.decode.frames import TruncatedVideoError

    err = pickle.loads(pickle.dumps(TruncatedVideoError("index lists 90 frames, file holds 42", "/x/a.mp4")))
    assert isinstance(err, TruncatedVideoError) and err.reason == "truncated"
    assert err.path == "/x/a.mp4" and "42" in str(err)


# --- the worker pool ----------------------------------------------------------------------------------
def crash_or_hang(path: str, mode: str) -> str:
    """A stand-in for a decoder that segfaults or spins with the GIL held (decord #373)."""
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "hang":
        while True:
            pass
    return f"{path}:{os.getpid()}"


def test_pool_survives_a_segfault_and_a_hang_of_one_task() -> None:
    modes = ["ok", "segv", "ok", "hang", "ok", "ok"]
    t0 = time.perf_counter()
    with FrameDecoderPool(workers=2, timeout_s=1.5, task_fn=crash_or_hang) as pool:
        out = list(pool.decode_many(((i, f"v{i}", m) for i, m in enumerate(modes)), prefetch=3))
    assert [k for k, _ in out] == list(range(len(modes)))  # input order
    reasons = [getattr(r, "reason", None) for _, r in out]
    assert reasons == [None, "decoder_crash", None, "timeout", None, None]
    assert all(r.startswith(f"v{i}:") for i, (_, r) in enumerate(out) if modes[i] == "ok")
    assert time.perf_counter() - t0 < 30


def test_pool_decodes_in_order_skips_bad_files_and_goes_on(vids: dict[str, Path],
                                                            bad: dict[str, tuple[Path, str]]) -> None:
    items = [(f"good{i}", vids["v60"]) for i in range(2)]
    items[1:1] = [(name, path) for name, (path, _) in bad.items()]
    items.append(("last", vids["v45"]))
    pulled: list[int] = []

    def tasks():  # type: ignore[no-untyped-def]
        for key, path in items:
            pulled.append(1)
            yield (key, path, 4, None, None, (32, 32))

    seen = []
    with FrameDecoderPool(workers=2, timeout_s=30) as pool:
        for n, (key, out) in enumerate(pool.decode_many(tasks(), prefetch=2), start=1):
            assert len(pulled) <= n + 2  # bounded prefetch: never more than 2 beyond what was handed out
            seen.append((key, out))
    assert [k for k, _ in seen] == [k for k, _ in items]
    expected = {name: reason for name, (_, reason) in bad.items()}
    for key, out in seen:
        if key in expected:
            assert isinstance(out, DecodeError) and out.reason == expected[key], key
        else:
            assert isinstance(out, DecodedFrames) and out.frames.shape == (4, 32, 32, 3)


def test_a_failure_of_the_pool_itself_stops_the_build_and_skips_no_video() -> None:
    """A task's own exception (pebble attaches the worker's traceback) skips that video; an exception the
    pool raised itself (no traceback: no video is to blame) or a cancelled task stops with a resumable
    error, since a recorded skip would lose the video on every resume."""
    from concurrent.futures import Future

    from videosavi.builders.decode.errors import DecodeError
    from videosavi.builders.decode.pool import DecoderPoolError

    pool = FrameDecoderPool(workers=1)
    task_error = ValueError("bad stream")
    task_error.traceback = "Traceback ...\nValueError: bad stream"  # type: ignore[attr-defined]  # set by pebble
    from_task: Future = Future()
    from_task.set_exception(task_error)
    assert isinstance(pool.outcome(from_task, "a.mp4"), DecodeError)
    from_pool: Future = Future()
    from_pool.set_exception(RuntimeError("Unexpected error within the Pool"))
    with pytest.raises(DecoderPoolError, match="nothing was skipped"):
        pool.outcome(from_pool, "b.mp4")
    cancelled: Future = Future()
    cancelled.cancel()
    with pytest.raises(DecoderPoolError, match="cancelled"):
        pool.outcome(cancelled, "c.mp4")

"""Decode videos in worker processes that may crash or hang without taking the build down.

decord has open reports of `get_batch` spinning forever while holding the GIL, and native decoders
can segfault on hostile files: no thread or signal in the same process can stop either. A pebble
process pool kills a worker that runs past the per-video timeout and replaces one that died; the
standard `ProcessPoolExecutor` instead marks the whole pool broken and fails every pending video.
Either failure becomes a `DecodeError` (`timeout` / `decoder_crash`) for that one video only.

Workers start from a fork server (never by forking the build process, which holds model threads
and a progress-bar thread), with the decoder modules preloaded so a replacement worker is cheap.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from videosavi.builders.decode.errors import DecodeError, DecoderCrashError, DecodeTimeoutError
from videosavi.builders.decode.frames import DecodedFrames, decode_frames
from videosavi.errors import VideosaviError

_PRELOAD = ["videosavi.builders.decode.frames", "videosavi.builders.decode.source_decode"]


class DecoderPoolError(VideosaviError):
    """The pool of decoder processes failed as a whole (not one video): the build stops, resumable."""


def _start_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def _init_worker() -> None:
    """Ctrl-C is the parent's business; FFmpeg's per-packet complaints would flood the console."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import av.logging

        av.logging.set_level(None)
    except Exception:  # logging is cosmetic; never fail a worker over it
        pass


class FrameDecoderPool:
    """A context manager over worker processes; `decode_many` streams results in input order.

    `task_fn` is what a worker runs, `decode_frames` by default; tasks are tuples
    `(key, path, *more_args)` and the worker calls `task_fn(path, *more_args)`.
    """

    def __init__(self, workers: int = 2, timeout_s: float = 60.0, max_tasks_per_worker: int = 200,
                 task_fn: Callable[..., Any] = decode_frames) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_tasks_per_worker = max_tasks_per_worker
        self.task_fn = task_fn
        self._pool: Any = None

    def __enter__(self) -> FrameDecoderPool:
        import pebble

        self._pool = pebble.ProcessPool(max_workers=self.workers, max_tasks=self.max_tasks_per_worker,
                                        initializer=_init_worker, context=_start_context())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers; results not yet taken are dropped (nothing else is pending by then)."""
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None

    def submit(self, path: Any, *args: Any) -> Future:
        if self._pool is None:
            raise RuntimeError("FrameDecoderPool must be used as a context manager (`with FrameDecoderPool(...)`)")
        try:
            return self._pool.schedule(self.task_fn, args=(path, *args), timeout=self.timeout_s)
        except RuntimeError as exc:
            raise RuntimeError(
                f"the decoder pool cannot run tasks ({exc}). Workers start from a fork server, which imports "
                "the main script again: a script that decodes must guard its entry point with "
                "`if __name__ == '__main__':`"
            ) from exc

    def outcome(self, future: Future, path: Any) -> DecodedFrames | DecodeError | Any:
        """The task's result, or the DecodeError that explains why there is none (never raises)."""
        import pebble

        try:
            return future.result()
        except DecodeError as exc:
            return exc
        except FutureTimeout:
            return DecodeTimeoutError(f"decoding took longer than {self.timeout_s:g} s; the worker was killed",
                                      str(path))
        except pebble.ProcessExpired as exc:
            return DecoderCrashError(f"the decoder process died ({exc}, exit code {exc.exitcode})", str(path))
        except CancelledError as exc:
            raise DecoderPoolError(f"the decode task of {path} was cancelled: the decoder pool stopped; nothing was "
                                   "skipped, run the same command again") from exc
        except Exception as exc:
            # pebble attaches the worker's traceback to what the task itself raised: a bug or a library error
            # on this file, so the video is skipped with the message. Without one the pool itself failed, and
            # no video is to blame: recording skips would lose them for good on every resume.
            remote = (getattr(exc, "traceback", "") or "").strip().splitlines()
            if not remote:
                raise DecoderPoolError(f"the decoder pool failed ({type(exc).__name__}: {exc}); nothing was skipped, "
                                       "run the same command again") from exc
            return DecodeError(f"{type(exc).__name__}: {exc} ({remote[-1]})", str(path))

    def decode_many(self, tasks: Iterable[tuple], prefetch: int = 4) -> Iterator[tuple[Any, Any]]:
        """Yield `(key, DecodedFrames | DecodeError)` in the order of `tasks`.

        At most `prefetch` tasks beyond the one being handed out are scheduled or held, so memory stays
        flat however many videos there are; `tasks` is consumed lazily.
        """
        prefetch = max(1, prefetch)
        source = iter(tasks)
        window: deque[tuple[Any, Any, Future]] = deque()

        def fill() -> None:
            while len(window) < prefetch:
                task = next(source, None)
                if task is None:
                    return
                key, path, *args = task
                window.append((key, path, self.submit(path, *args)))

        try:
            fill()
            while window:
                key, path, future = window.popleft()
                fill()  # keep the workers busy while the caller works on this result
                yield key, self.outcome(future, path)
        finally:
            for _, _, future in window:
                future.cancel()

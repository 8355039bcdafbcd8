"""Errors a user can act on. Each carries a message that says what to do, not just what broke."""

from __future__ import annotations


class VideosaviError(Exception):
    """Base class: the CLI prints these as one clean line instead of a traceback."""


class ConfigError(VideosaviError):
    """A config file or option is missing, malformed or inconsistent."""


class ManifestError(VideosaviError):
    """A source manifest cannot be read in its declared format."""


class RunDirMismatchError(VideosaviError):
    """A run directory was built with another config or model; refusing to mix results."""


class PublishError(VideosaviError):
    """Publishing a run failed or was refused; nothing partial was left behind."""


class RevisionNotFoundError(VideosaviError):
    """A dataset revision (tag, branch or sha) does not exist in the repository."""


class TrainingDataError(VideosaviError):
    """The training data cannot be used as asked (e.g. too many rows lack their video)."""


class ModelError(VideosaviError):
    """A model backend cannot be loaded or used as configured (unknown name, missing extra, bad path)."""


class HubError(VideosaviError):
    """A dataset repository or hub server cannot be used as asked (bad repo id, server not answering)."""


class DatasetError(VideosaviError):
    """A run directory, parquet file or dataset cannot be read as videosavi preference pairs."""


class HumanEvalError(VideosaviError):
    """A human-evaluation export or score cannot be done as asked (too few videos, bad sheet or key)."""


class DiskFullError(VideosaviError):
    """The disk holding a run directory is full; finished work is kept and the same command resumes."""


class ExecutorError(VideosaviError):
    """A distributed build (Ray) could not finish some shards; finished shards are kept for a re-run."""


class ReserveNeededError(VideosaviError):
    """Merged shards are short of pairs: reserve videos were added to every shard's sample, and the
    shards must be built again before the merge can deliver the quotas."""


class ShortfallError(VideosaviError):
    """A source's reserve ran out before its pairs were met. The run directory is finished and holds what
    was built (build.json records the shortfall); `--allow-shortfall` accepts it as it is."""


class ExportError(VideosaviError):
    """An export cannot be written as asked (bad --out, a root that is not there, too many unusable
    rows); nothing partial is left at --out."""


class LockedError(VideosaviError):
    """Another live command holds the run directory or store repository; nothing was changed."""


class OutRefusedError(ConfigError):
    """`--out` names a place the command must not write (an input, a folder or file it did not write);
    nothing was touched."""

class BenchError(VideosaviError):
    """A benchmark run cannot be done as asked (LMMs-Eval missing or failing, unknown task, data offline,
    a model it cannot load, another model's results in the output folder); no partial score is kept."""


class BuildStoppedError(VideosaviError):
    """A build stopped before completing (its model calls failed for too many videos): build.json records why
    in `stopped`, finished videos are kept, and the same command resumes once the cause is fixed."""

    def __init__(self, message: str, run_dir: object = None) -> None:
        super().__init__(message)
        self.run_dir = run_dir

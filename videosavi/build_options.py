"""The build options, each defined once with its help text: `savi build` / `savi-build`'s flags, `savi
loop`'s build options and the keywords of `videosavi.run_build(config, ...)` are all derived from
`BuildOptions` (as training's are from `TrainingOptions`: a dataclass whose fields carry
`metadata={"help": ...}`; commands/dataclass_options.py makes the flags).

Field metadata: `help`, `commands` (the commands that have it as a flag: `build` for `savi build` and
`savi-build`, `loop` for `savi loop`; none for what only a caller fills in), and the flag's spelling where
it is not `--field-name` (`flag`, `short`, `min`, `cli_type`). A field no command shows is still a
keyword of `run_build` unless it is `internal`. The config, the data root and where the build runs (the
executor) are not build options here: `--config` and `--data-root` are words every command shares
(commands/options.py), and the executor is how the options are carried out, not what they build.

Plain data in the core layer, so the runner, the API, the loop and the CLI all import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from videosavi.config import BuildConfig

BUILD, LOOP = "build", "loop"


def _opt(default: Any, help: str, commands: tuple[str, ...] = (BUILD,), **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, "commands": commands, **extra})


def _caller(default: Any = None, help: str = "", internal: bool = False, **kwargs: Any) -> Any:
    """A field a caller fills in (no command has it as a flag)."""
    return field(default=default, metadata={"help": help, "commands": (), "internal": internal}, **kwargs)


@dataclass
class BuildOptions:
    """One build's run: which config (a validated `BuildConfig`, or a YAML path or bundled name with
    `overrides`), which iteration, where, and how much of the sample."""

    iteration: int = _opt(1, "Self-training iteration N (1..).", short="-i", min=1)
    out: str | Path | None = _opt(None, "Run directory (default runs/iterN).", short="-o", cli_type=Optional[Path])
    model: str | None = _opt(
        None, "Model instead of the config's: tiny-qwen2-vl, a hub id, or a local folder (for iteration N > 1: the "
              "previous iteration's merged model).", short="-m")
    limit_videos: int | None = _opt(None, "Use only the first K videos.", (BUILD, LOOP), min=1)
    num_shards: int = _opt(1, "Split the videos into S shards.", min=1)
    shard_index: int = _opt(0, "Build only shard I (0-based).", min=0)
    force: bool = _opt(False, "Start over: discard what a build wrote to --out (a run built with another setup is "
                                "refused without it).", flag="--overwrite")
    previous: str | None = _opt(
        None, "Retrospective builds (retrospective: true), iteration > 1: the previous iteration's run directory, "
              "or ORG/NAME@REV of its published revision (read from --store, --endpoint or --hub). Its rows hold "
              "the video descriptions this iteration revises.")
    allow_random_weights: bool = _opt(
        False, "Build with a random-weight tiny model although nothing else asks for it (the config names no "
               "model). Its text is meaningless: for tests and demos only.", (BUILD, LOOP))
    allow_shortfall: bool = _opt(
        False, "Keep a build whose sources ran out of videos before their quota of pairs was met (recorded in "
               "build.json; the card states the shortfall). Without it such a build ends with exit 2.", (BUILD, LOOP))
    # --- filled in by a caller ---------------------------------------------------------------------------
    config: BuildConfig | str | Path | None = _caller(
        help="The config: a `BuildConfig`, or a YAML file or bundled name (read with `overrides`).")
    data_root: str | Path | None = _caller(help="The root the config's source paths are relative to.")
    window: int | None = _caller(help="Videos per window of batched model calls (default: model.batch_size).",
                                 internal=True)
    overrides: dict[str, Any] = _caller(default=dataclasses.MISSING, default_factory=dict, internal=True,
                                        help="Changes to a config read from a file (the CLI's; in Python, change "
                                             "the BuildConfig).")
    # retrospective builds: the label of descriptions a caller read from a published revision (`previous`),
    # `video_uid -> text`, and the name and iteration its build.json gives; builders/run/retrospective.py
    previous_descriptions: dict[str, str] | None = _caller(internal=True)
    previous_origin: dict[str, Any] | None = _caller(internal=True)

    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        suffix = f"-shard{self.shard_index}of{self.num_shards}" if self.num_shards > 1 else ""
        return Path("runs") / f"iter{self.iteration}{suffix}"

    def replace(self, **changes: Any) -> BuildOptions:
        return dataclasses.replace(self, **changes)


def api_fields() -> list[dataclasses.Field]:
    """The fields `videosavi.run_build` takes as keywords (all but the config it takes first, and what
    only the command line or the runner fills in)."""
    return [f for f in dataclasses.fields(BuildOptions) if f.name != "config" and not f.metadata.get("internal")]


def option_help(name: str) -> str:
    """One option's help text (for a command that shows one build option on its own)."""
    return str(next(f.metadata["help"] for f in dataclasses.fields(BuildOptions) if f.name == name))


def options_doc() -> str:
    """`run_build`'s keywords with their help, for its docstring."""
    return "\n".join(f"    {f.name}: {f.metadata['help']}" for f in api_fields())

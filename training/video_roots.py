"""Where each source's videos live on this machine.

Published rows never carry absolute paths (videos are not redistributed), only a source name and a
path relative to that source's root, so whoever trains maps sources to local folders: either one
`SOURCE=DIR` per source, or the build config plus a data root, exactly as the builder resolved them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from videosavi.errors import ConfigError

_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def parse_video_roots(specs: Iterable[str]) -> dict[str, Path]:
    """`["star=/data/charades", ...]` -> {"star": Path(...)}; a malformed or repeated entry is an error."""
    roots: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name, folder = name.strip(), folder.strip()
        if not sep or not name or not folder:
            raise ConfigError(f"--video-root expects SOURCE=DIR, got {spec!r}")
        if not _SOURCE_NAME.fullmatch(name):
            raise ConfigError(f"--video-root source {name!r} must be lowercase letters, digits, '-' or '_'")
        if name in roots:
            raise ConfigError(f"--video-root gives source {name!r} twice")
        roots[name] = Path(folder).expanduser().resolve()
    return roots


def roots_from_config(config: str | Path, data_root: str | Path | None) -> dict[str, Path]:
    """Each source's root from a build config, relative to the data root (as `savi-build` resolves it)."""
    from videosavi.config import load_config, resolve_data_root

    cfg = load_config(config)
    base = resolve_data_root(data_root)
    return {name: (base / src.root).resolve() for name, src in cfg.sources.items()}


def symlink_sources(config: str | Path | None) -> tuple[str, ...]:
    """The sources whose config allows links out of their root (`follow_symlinks: true`); none without
    a config (`--video-root` roots are held to their boundary)."""
    if config is None:
        return ()
    from videosavi.config import load_config

    return tuple(name for name, src in load_config(config).sources.items() if src.follow_symlinks)


def resolve_roots(video_roots: Iterable[str] = (), config: str | Path | None = None,
                  data_root: str | Path | None = None) -> dict[str, Path]:
    """The two ways to give roots exclude each other, so no source's root is ever picked silently."""
    specs = list(video_roots)
    if specs and config is not None:
        raise ConfigError("give either --video-root SOURCE=DIR (repeatable) or --config CFG --data-root DIR, not both")
    if specs:
        return parse_video_roots(specs)
    if config is not None:
        return roots_from_config(config, data_root)
    if data_root is not None:
        raise ConfigError("--data-root needs --config (the config names each source's folder under it)")
    raise ConfigError("say where the videos are: --video-root SOURCE=DIR (one per source) or "
                      "--config CFG --data-root DIR")

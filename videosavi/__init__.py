"""videosavi: self-aligned video preference data, built, validated, published and trained on.

The top level stays import-light (no torch, no transformers) so `savi --help` is instant; heavy
pieces are imported where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videosavi.progress import disable_progress_bars, enable_progress_bars
from videosavi.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from videosavi.hub.load import load_revision as load_revision


def __getattr__(name: str) -> Any:
    # `videosavi.load_revision` is the documented entry point; import it lazily.
    if name == "load_revision":
        from videosavi.hub.load import load_revision

        return load_revision
    raise AttributeError(name)


__all__ = ["__version__", "disable_progress_bars", "enable_progress_bars", "load_revision"]

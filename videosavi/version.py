"""The package version, in a core module of its own.

Modules of every layer record it (rows, build.json, cards); importing it from here rather than from
`videosavi` keeps them off the package's front door, whose lazy `load_revision` reaches up into `hub`.
"""

from __future__ import annotations

__version__ = "0.1.0"

"""Prompt templates of the four stages, loaded from the text files beside this module.

Templates use `string.Template` placeholders (`${question}`), so braces in the JSON examples need no
escaping and model text inserted into them is never re-interpreted. Each template is versioned by the
hash of its content; `prompt_version` (recorded in every row) hashes all four together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

STAGES: tuple[str, ...] = ("question", "answer", "critique", "refine")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptSet:
    templates: dict[str, str]

    @classmethod
    def load(cls, directory: str | Path | None = None) -> PromptSet:
        """The bundled templates, or those in `directory` (one `<stage>.txt` per stage)."""
        texts: dict[str, str] = {}
        for stage in STAGES:
            if directory is None:
                texts[stage] = (resources.files(__package__) / f"{stage}.txt").read_text(encoding="utf-8")
            else:
                path = Path(directory) / f"{stage}.txt"
                if not path.exists():
                    from videosavi.errors import ConfigError

                    raise ConfigError(f"prompt template missing: {path}")
                texts[stage] = path.read_text(encoding="utf-8")
        return cls(texts)

    @property
    def hashes(self) -> dict[str, str]:
        return {stage: _hash(text) for stage, text in self.templates.items()}

    @property
    def version(self) -> str:
        """One id for the whole set: changes when any template changes."""
        joined = "\x1e".join(f"{s}={self.hashes[s]}" for s in STAGES)
        return "p" + _hash(joined)

    def render(self, stage: str, **values: object) -> str:
        """The stage's text for these values; the file's final newline is not part of the prompt (the bare
        answer template `${question}` renders to exactly the question)."""
        return Template(self.templates[stage]).substitute({k: str(v) for k, v in values.items()}).rstrip("\n")

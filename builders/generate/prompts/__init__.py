"""Prompt templates of the stages, loaded from the text files beside this module.

Templates use `string.Template` placeholders (`${question}`), so braces in the JSON examples need no
escaping and model text inserted into them is never re-interpreted. Each template is versioned by the
hash of its content; `prompt_version` (recorded in every row) hashes the loaded ones together, in the
order they were loaded. A stage names its templates (`Stage.templates`); a build loads those of its
stages (`stages.load_prompts(cfg)`): the paper's four (`STAGES`), then those of an optional stage such
as the retrospective describe stage (`RETROSPECTIVE_TEMPLATES`), which therefore enter `prompt_version`
only when loaded, so builds without it keep the version they always had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

# The templates `load()` reads by default: the paper's four stages', and the describe stage's.
STAGES: tuple[str, ...] = ("question", "answer", "critique", "refine")
RETROSPECTIVE_TEMPLATES: tuple[str, ...] = ("describe", "describe_previous", "critique_context")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptSet:
    templates: dict[str, str]

    @classmethod
    def load(cls, directory: str | Path | None = None, *, retrospective: bool = False,
             templates: Sequence[str] | None = None) -> PromptSet:
        """The bundled templates, or those in `directory` (one `<name>.txt` each): `templates`, in that
        order; by default the paper's four stages' (with `retrospective`, the describe stage's too)."""
        texts: dict[str, str] = {}
        if templates is None:
            templates = (*STAGES, *(RETROSPECTIVE_TEMPLATES if retrospective else ()))
        for stage in templates:
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
    def retrospective(self) -> bool:
        return all(name in self.templates for name in RETROSPECTIVE_TEMPLATES)

    @property
    def version(self) -> str:
        """One id for the whole set, in the order it was loaded: changes when any template changes."""
        joined = "\x1e".join(f"{s}={h}" for s, h in self.hashes.items())
        return "p" + _hash(joined)

    def render(self, stage: str, **values: object) -> str:
        """The stage's text for these values; the file's final newline is not part of the prompt (the bare
        answer template `${question}` renders to exactly the question)."""
        return Template(self.templates[stage]).substitute({k: str(v) for k, v in values.items()}).rstrip("\n")

"""Prompt templates of the four stages, loaded from the text files beside this module.

Templates use `string.Template` placeholders (`${question}`), so braces in the JSON examples need no
escaping and model text inserted into them is never re-interpreted. Each template is versioned by the
hash of its content; `prompt_version` (recorded in every row) hashes all four together.

A build with `retrospective: true` (ISR-DPO's self-retrospective context) also loads
`RETROSPECTIVE_TEMPLATES`: the describe stage's prompt, the block that shows it the previous
iteration's description, and the block that shows the critic the current one. They enter
`prompt_version` only when loaded, so builds without the stage keep the version they always had.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

STAGES: tuple[str, ...] = ("question", "answer", "critique", "refine")
RETROSPECTIVE_TEMPLATES: tuple[str, ...] = ("describe", "describe_previous", "critique_context")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptSet:
    templates: dict[str, str]

    @classmethod
    def load(cls, directory: str | Path | None = None, *, retrospective: bool = False) -> PromptSet:
        """The bundled templates, or those in `directory` (one `<stage>.txt` per stage); with
        `retrospective`, the describe stage's templates too."""
        texts: dict[str, str] = {}
        for stage in (*STAGES, *(RETROSPECTIVE_TEMPLATES if retrospective else ())):
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
        """One id for the whole set: changes when any template changes (the retrospective ones only
        count when loaded)."""
        names = [*STAGES, *(n for n in RETROSPECTIVE_TEMPLATES if n in self.templates)]
        joined = "\x1e".join(f"{s}={self.hashes[s]}" for s in names)
        return "p" + _hash(joined)

    def render(self, stage: str, **values: object) -> str:
        """The stage's text for these values; the file's final newline is not part of the prompt (the bare
        answer template `${question}` renders to exactly the question)."""
        return Template(self.templates[stage]).substitute({k: str(v) for k, v in values.items()}).rstrip("\n")

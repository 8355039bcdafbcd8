"""The judge's call, shaped like a build stage: its own prompt files, messages, schema and parser.

The prompt (`judge.txt`) gives the paper's six error types (Figure 12) in our own words, with both
halves of each definition: an object hallucination covers wrong properties of an object that is
there, a temporal-ordering error covers a wrong account of which action led to which. Figure 12 asks
for no severity; `--severity` adds `judge_severity.txt` (critical or minor per error) and an extra
severity split in the table. The prompt is versioned by the hash of the text sent, and the reply is
held to the JSON Schema of `schemas.evaluation.Judgement`, with `severity` left out or required as
asked, so the error types are the record's own vocabulary, never free text to be mapped afterwards.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

from videosavi.builders.generate.stages.base import video_user_message
from videosavi.builders.generate.stages.parsing import ParseError, parse_model
from videosavi.hashing import stable_hash, text_hash
from videosavi.schemas.evaluation import Judgement
from videosavi.schemas.json_schema import json_schema

PROMPT_FILE = "judge.txt"
SEVERITY_FILE = "judge_severity.txt"
_EXAMPLE = {"quote": "...", "explanation": "...", "error_type": "spatial_relationship"}


def _read(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's template with its severity choice filled in; `text` still holds the per-call fields."""

    text: str
    severity: bool = False

    @classmethod
    def load(cls, severity: bool = False) -> JudgePrompt:
        example = {**_EXAMPLE, **({"severity": "critical"} if severity else {})}
        reply = json.dumps({"errors": [example], "assessment": "..."})
        text = Template(_read(PROMPT_FILE)).safe_substitute(
            severity_rule=_read(SEVERITY_FILE).rstrip("\n") if severity else "", reply_form=reply)
        return cls(text, severity)

    @property
    def hash(self) -> str:
        return text_hash(self.text)

    def messages(self, question: str, answer: str, num_frames: int) -> list[dict]:
        """The judge's user turn: the frames, then the question and the answer to grade."""
        text = Template(self.text).substitute(question=question, answer=answer, num_frames=str(num_frames))
        return video_user_message(text)


def judge_schema(severity: bool = False) -> dict[str, Any]:
    """`Judgement`'s JSON Schema with each error's `severity` removed, or required and non-null."""
    schema = copy.deepcopy(json_schema(Judgement))
    error = schema["properties"]["errors"]["items"]
    if severity:
        error["properties"]["severity"] = {"type": "string", "enum": ["critical", "minor"]}
    else:
        del error["properties"]["severity"]
    error["required"] = list(error["properties"])
    return schema


def schema_hash(severity: bool = False) -> str:
    return stable_hash(judge_schema(severity), 12)


def parse_judgement(text: str, severity: bool = False) -> Judgement:
    """The reply as a `Judgement`. Asked for severity, every error must carry one; not asked, a severity
    the judge volunteered is dropped, so the table never mixes rated and unrated errors."""
    judgement = parse_model(text, Judgement)
    if severity and any(e.severity is None for e in judgement.errors):
        raise ParseError("schema_mismatch", "an error has no severity")
    if not severity:
        judgement = judgement.model_copy(update={"errors": [e.model_copy(update={"severity": None})
                                                            for e in judgement.errors]})
    return judgement

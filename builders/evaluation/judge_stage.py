"""The judge's call, shaped like a build stage: its own prompt file, messages, schema and parser.

The prompt (`judge.txt`, our own words for the paper's error analysis) is versioned by the hash of
its text; the reply is held to the JSON Schema of `schemas.evaluation.Judgement`, so the six error
types and two severities are the record's own vocabulary, never free text to be mapped afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from string import Template

from videosavi.builders.stages.messages import video_user_message
from videosavi.builders.stages.parsing import parse_model
from videosavi.hashing import stable_hash, text_hash
from videosavi.schemas.evaluation import Judgement
from videosavi.schemas.json_schema import json_schema

PROMPT_FILE = "judge.txt"


@dataclass(frozen=True)
class JudgePrompt:
    text: str

    @classmethod
    def load(cls) -> JudgePrompt:
        return cls((resources.files(__package__) / PROMPT_FILE).read_text(encoding="utf-8"))

    @property
    def hash(self) -> str:
        return text_hash(self.text)

    def messages(self, question: str, answer: str, num_frames: int) -> list[dict]:
        """The judge's user turn: the frames, then the question and the answer to grade."""
        text = Template(self.text).substitute(question=question, answer=answer, num_frames=str(num_frames))
        return video_user_message(text)


def judge_schema() -> dict:
    return json_schema(Judgement)


def schema_hash() -> str:
    return stable_hash(judge_schema(), 12)


def parse_judgement(text: str) -> Judgement:
    return parse_model(text, Judgement)

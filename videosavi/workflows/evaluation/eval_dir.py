"""The three small folders `savi eval` writes, in one place (as `run_dir.py` is for builds).

```
EVALSET/    evalset.json (EvalSetInfo), questions.parquet (EvalQuestion), cache.sqlite (working state)
ANSWERS/    answers.json (AnswersInfo), answers.parquet (EvalAnswer), cache.sqlite,
            evalset.json + questions.parquet (copies: the folder is judged without the set at hand)
TABLE/      judge.json (JudgeInfo), judge_prompt.txt, judgements.parquet (JudgementRecord),
            quarantine.jsonl, table.json, table.md, errors.png, cache.sqlite
```
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from videosavi.builders.generate.call_cache import CallCache
from videosavi.errors import DatasetError, RunDirMismatchError
from videosavi.hashing import canonical_json
from videosavi.run_dir import atomic_write_text
from videosavi.schemas.arrow import from_table, to_table
from videosavi.schemas.evaluation import AnswersInfo, EvalAnswer, EvalQuestion, EvalSetInfo

M = TypeVar("M", bound=BaseModel)

EVALSET_JSON = "evalset.json"
QUESTIONS = "questions.parquet"
ANSWERS_JSON = "answers.json"
ANSWERS = "answers.parquet"
CACHE = "cache.sqlite"


def write_json_model(path: Path, record: BaseModel) -> None:
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")


def _brief(exc: Exception) -> str:
    """One line for what is wrong with a file (a pydantic error lists every field on its own line)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first.get('msg')}{more}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def read_json_model(path: Path, model: type[M], what: str) -> M:
    """The folder's record, or one line naming the file when it is missing, not UTF-8 or not valid."""
    if not path.is_file():
        raise DatasetError(f"{path.parent} is not {what}: {path.name} is missing")
    try:
        return model.model_validate_json(path.read_bytes().decode("utf-8"))
    except (ValidationError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not a valid {model.__name__} ({_brief(exc)}): was it edited? Make {what} "
                           "again") from exc


def check_spec(cache: CallCache, spec: dict, where: Path, force: bool) -> None:
    """Refuse to mix two setups' results in one folder (the build's rule, for eval folders)."""
    old = cache.get_meta("spec")
    if old is not None and not force:
        old_spec = json.loads(old)
        diff = sorted(k for k in set(spec) | set(old_spec) if spec.get(k) != old_spec.get(k))
        if diff:
            details = ", ".join(f"{k}: {old_spec.get(k)!r} -> {spec.get(k)!r}" for k in diff)
            raise RunDirMismatchError(f"{where} was made with a different setup ({details}); use another --out, "
                                      "or --overwrite to replace its results")
    cache.set_meta("spec", canonical_json(spec))


def write_rows(path: Path, rows: Sequence[BaseModel], model: type[BaseModel]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_table(rows, model), tmp)
    tmp.replace(path)


def read_rows(path: Path, model: type[M]) -> list[M]:
    """Every row of a folder's parquet file as `model`; one line naming the file when one is not."""
    try:
        return from_table(pq.read_table(path), model)
    except (ValidationError, pa.ArrowException) as exc:
        raise DatasetError(f"{path} does not hold valid {model.__name__} rows ({_brief(exc)}): was it edited? "
                           "Make it again") from exc


@dataclass(frozen=True)
class EvalSetDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def info_json(self) -> Path:
        return self.path / EVALSET_JSON

    @property
    def questions(self) -> Path:
        return self.path / QUESTIONS

    @property
    def cache_db(self) -> Path:
        return self.path / CACHE

    def exists(self) -> bool:
        return self.info_json.is_file() and self.questions.is_file()

    def write(self, info: EvalSetInfo, questions: list[EvalQuestion]) -> None:
        """Questions first, the json last: its presence means the set is complete."""
        write_rows(self.questions, questions, EvalQuestion)
        write_json_model(self.info_json, info)

    def read_info(self) -> EvalSetInfo:
        return read_json_model(self.info_json, EvalSetInfo, "an eval set (savi eval make-set)")

    def read_questions(self) -> list[EvalQuestion]:
        self.read_info()
        return read_rows(self.questions, EvalQuestion)

    def copy_to(self, dest: Path) -> None:
        """The set's two files beside answers, so the answers folder is self-contained."""
        dest.mkdir(parents=True, exist_ok=True)
        for name in (QUESTIONS, EVALSET_JSON):
            shutil.copyfile(self.path / name, dest / (name + ".tmp"))
            (dest / (name + ".tmp")).replace(dest / name)


@dataclass(frozen=True)
class AnswersDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def info_json(self) -> Path:
        return self.path / ANSWERS_JSON

    @property
    def answers(self) -> Path:
        return self.path / ANSWERS

    @property
    def cache_db(self) -> Path:
        return self.path / CACHE

    @property
    def eval_set(self) -> EvalSetDir:
        return EvalSetDir(self.path)

    def write(self, info: AnswersInfo, answers: list[EvalAnswer]) -> None:
        write_rows(self.answers, answers, EvalAnswer)
        write_json_model(self.info_json, info)

    def read_info(self) -> AnswersInfo:
        return read_json_model(self.info_json, AnswersInfo, "an answers folder (savi eval answer)")

    def read_answers(self) -> list[EvalAnswer]:
        self.read_info()
        return read_rows(self.answers, EvalAnswer)


@dataclass(frozen=True)
class JudgeDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def info_json(self) -> Path:
        return self.path / "judge.json"

    @property
    def prompt(self) -> Path:
        return self.path / "judge_prompt.txt"

    @property
    def judgements(self) -> Path:
        return self.path / "judgements.parquet"

    @property
    def quarantine(self) -> Path:
        return self.path / "quarantine.jsonl"

    @property
    def table_json(self) -> Path:
        return self.path / "table.json"

    @property
    def table_md(self) -> Path:
        return self.path / "table.md"

    @property
    def plot(self) -> Path:
        return self.path / "errors.png"

    @property
    def cache_db(self) -> Path:
        return self.path / CACHE

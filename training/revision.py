"""One published revision as training needs it: rows, commit sha, and how the pairs were made.

The revision is resolved to a commit sha once, and everything (rows, `build.json`, the answer prompt
template) is read at that sha, so a tag moved while we read can never mix two iterations. The
revision's own `build.json` says how frames were resized and its `prompts/answer.txt` is the exact
template the rejected answers were generated with; training re-uses both so the model is optimised
on the inputs it actually answered.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videosavi.errors import TrainingDataError

log = logging.getLogger(__name__)

BUILD_JSON = "build.json"
ANSWER_TEMPLATE = "prompts/answer.txt"
MAX_SIDE_FILE_BYTES = 32 << 20  # build.json of a 24K-pair build is a few KB
MAX_TEMPLATE_BYTES = 64 << 10


@dataclass
class TrainingRevision:
    repo: str
    revision: str
    sha: str
    dataset: Any  # datasets.Dataset of PreferencePair rows (`chosen`/`rejected` as text, whatever the layout)
    build_info: dict[str, Any] = field(default_factory=dict)
    answer_template: str | None = None

    @property
    def resize(self) -> tuple[int, int] | None:
        """The (height, width) the builder resized frames to, or None for native size."""
        value = ((self.build_info.get("config") or {}).get("frames") or {}).get("resize")
        return (int(value[0]), int(value[1])) if value else None

    @property
    def base_model(self) -> dict[str, Any]:
        """The model that generated the pairs (build.json `model`), for the card's lineage."""
        return dict(self.build_info.get("model") or {})


def _read_side_file(repo: str, sha: str, path: str, *, store: str | Path | None, endpoint: str | None,
                    token: str | None) -> bytes | None:
    """A small file of the revision at `sha`, or None when the revision has none."""
    if store is not None:
        from videosavi.hub.store import GitStore

        return GitStore(store).read_file(repo, sha, path)
    from huggingface_hub import hf_hub_download

    try:
        local = hf_hub_download(repo, path, repo_type="dataset", revision=sha, endpoint=endpoint, token=token)
    except Exception as exc:  # absent file (404) or a server that cannot serve it: both mean "not there"
        log.info("%s@%s has no readable %s (%s)", repo, sha[:12], path, type(exc).__name__)
        return None
    return Path(local).read_bytes()


def _refuse(where: str, path: str, problem: str) -> TrainingDataError:
    return TrainingDataError(f"{where}: {path} {problem}; it was not written by savi publish, so it is not used "
                             "(publish the run again, or pick another revision)")


def parse_build_info(raw: bytes, where: str) -> dict[str, Any]:
    """A revision's build.json, checked where training and export read it: a JSON object of bounded
    size whose `config`, `config.frames` and `model` are objects, `iteration` a positive integer and
    `config.frames.resize` a sane (height, width) (schemas/frames.py); one line otherwise."""
    from videosavi.schemas.frames import check_resize

    if len(raw) > MAX_SIDE_FILE_BYTES:
        raise _refuse(where, BUILD_JSON, f"is {len(raw)} bytes (at most {MAX_SIDE_FILE_BYTES})")
    try:
        info = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _refuse(where, BUILD_JSON, f"is not UTF-8 text (byte {exc.start})") from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _refuse(where, BUILD_JSON, f"is not valid JSON ({str(exc)[:120]})") from exc
    if not isinstance(info, dict):
        raise _refuse(where, BUILD_JSON, "is not a JSON object")
    config = info.get("config")
    checks = [
        (config is None or isinstance(config, dict), "config is not an object"),
        (info.get("model") is None or isinstance(info.get("model"), dict), "model is not an object"),
        (info.get("iteration") is None or (type(info.get("iteration")) is int and info["iteration"] >= 1),
         "iteration is not a positive integer"),
        (not isinstance(config, dict) or config.get("frames") is None or isinstance(config.get("frames"), dict),
         "config.frames is not an object"),
    ]
    for ok, problem in checks:
        if not ok:
            raise _refuse(where, BUILD_JSON, problem)
    try:
        check_resize(((config or {}).get("frames") or {}).get("resize"))
    except ValueError as exc:
        raise _refuse(where, BUILD_JSON, f"config.frames.{exc}") from exc
    return info


def parse_answer_template(raw: bytes, where: str) -> str:
    """A revision's answer template, checked before training renders prompts with it: UTF-8 text of
    bounded size that renders a question (`${question}`) and asks for nothing else."""
    from string import Template

    if len(raw) > MAX_TEMPLATE_BYTES:
        raise _refuse(where, ANSWER_TEMPLATE, f"is {len(raw)} bytes (at most {MAX_TEMPLATE_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(where, ANSWER_TEMPLATE, f"is not UTF-8 text (byte {exc.start})") from exc
    probe = "\x00question\x00"
    try:
        rendered = Template(text).substitute(question=probe)
    except (KeyError, ValueError) as exc:
        problem = f"is not an answer template (placeholder problem: {str(exc)[:80]})"
        raise _refuse(where, ANSWER_TEMPLATE, problem) from exc
    if probe not in rendered:
        raise _refuse(where, ANSWER_TEMPLATE, "is not an answer template (it has no ${question})")
    return text


def check_template_hash(build_info: dict[str, Any], template: str | None, where: str) -> None:
    """The answer template must be the one build.json recorded (its content hash): rows' prompts were
    generated from it, so training on another one would optimise a prompt the model never answered."""
    from videosavi.hashing import text_hash

    expected = (build_info.get("prompts") or {}).get("answer") if isinstance(build_info.get("prompts"), dict) else None
    if template is None or not isinstance(expected, str) or not 0 < len(expected) <= 64:
        return
    got = text_hash(template, len(expected))
    if got != expected:
        raise _refuse(where, ANSWER_TEMPLATE, f"hashes to {got}, but build.json recorded {expected} for the template "
                      "the rows were made with")


def open_revision(repo: str, revision: str, *, store: str | Path | None = None, endpoint: str | None = None,
                  token: str | None = None, cache_dir: str | Path | None = None) -> TrainingRevision:
    """Resolve `revision` to a sha, then load rows and side files of exactly that commit."""
    from videosavi.hub.load import load_revision, resolve_revision

    sha = resolve_revision(repo, revision, store=store, endpoint=endpoint, token=token)
    try:
        dataset = load_revision(repo, sha, store=store, endpoint=endpoint, token=token, cache_dir=cache_dir)
    except Exception as exc:
        if type(exc).__name__ != "DatasetGenerationError":
            raise
        # datasets 5.2 cannot read a parquet shard with zero rows: a revision published from an empty build
        raise TrainingDataError(f"{repo}@{revision} ({sha[:12]}) cannot be read as pairs (is it empty?): "
                                f"{exc.__cause__ or exc}") from exc
    if len(dataset) == 0:
        raise TrainingDataError(f"{repo}@{revision} ({sha[:12]}) holds no preference pairs")
    where = f"{repo}@{revision} ({sha[:12]})"
    from videosavi.formats.published_rows import record_columns

    dataset = record_columns(dataset)  # the record's text `chosen`/`rejected` (published as messages)
    raw_build = _read_side_file(repo, sha, BUILD_JSON, store=store, endpoint=endpoint, token=token)
    build_info = parse_build_info(raw_build, where) if raw_build is not None else {}
    raw_prompt = _read_side_file(repo, sha, ANSWER_TEMPLATE, store=store, endpoint=endpoint, token=token)
    template = parse_answer_template(raw_prompt, where) if raw_prompt is not None else None
    check_template_hash(build_info, template, where)
    return TrainingRevision(repo=repo, revision=revision, sha=sha, dataset=dataset, build_info=build_info,
                            answer_template=template)

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
    from videosavi.formats.published_rows import record_columns

    dataset = record_columns(dataset)  # the record's text `chosen`/`rejected` (published as messages)
    raw_build = _read_side_file(repo, sha, BUILD_JSON, store=store, endpoint=endpoint, token=token)
    build_info: dict[str, Any] = {}
    if raw_build is not None:
        try:
            build_info = json.loads(raw_build.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrainingDataError(f"{repo}@{revision}: {BUILD_JSON} is not valid JSON: {exc}") from exc
    raw_prompt = _read_side_file(repo, sha, ANSWER_TEMPLATE, store=store, endpoint=endpoint, token=token)
    template = raw_prompt.decode("utf-8") if raw_prompt is not None else None
    return TrainingRevision(repo=repo, revision=revision, sha=sha, dataset=dataset, build_info=build_info,
                            answer_template=template)

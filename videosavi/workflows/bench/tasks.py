"""LMMs-Eval's tasks, read from their YAML files: which names exist, what a task's config says, and whether
its data can be had offline.

LMMs-Eval's own TaskManager indexes its ~2,000 task files in about 30 s on every start; `savi bench` only
needs to know whether a name exists (an unknown name must fail in a second, with the names it resembles)
and where a task's data comes from, so it reads the YAMLs itself: `task:` names a task, `group:` with a
list of tasks names a group, `tag:` names a tag. The index of the installed package is cached per
LMMs-Eval version; folders given with `--include-path` (local tasks) are read on every run.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from videosavi.errors import BenchError
from videosavi.hashing import stable_hash
from videosavi.paths import cache_dir

Kind = Literal["task", "group", "tag"]
# dataset_path values that are `datasets` loaders reading local files (data_files), not Hub datasets
LOCAL_LOADERS = {"json", "csv", "parquet", "arrow", "text", "imagefolder", "videofolder", "audiofolder", "webdataset"}
INDEX_VERSION = 1


@dataclass(frozen=True)
class TaskEntry:
    name: str
    kind: Kind
    yaml_path: str
    members: tuple[str, ...] = ()  # a group's tasks, as its YAML lists them


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads LMMs-Eval's `!function utils.x` tags as their text."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix} {getattr(node, 'value', '')}")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _entries(path: Path) -> list[TaskEntry]:
    data = read_yaml(path)
    out: list[TaskEntry] = []
    task, group, tag = data.get("task"), data.get("group"), data.get("tag")
    if isinstance(task, list) and isinstance(group, str):
        members = tuple(t if isinstance(t, str) else str(t.get("task", "")) for t in task
                        if isinstance(t, (str, dict)))
        out.append(TaskEntry(group, "group", str(path), members))
    elif isinstance(task, str):
        out.append(TaskEntry(task, "task", str(path)))
        for t in [tag] if isinstance(tag, str) else (tag if isinstance(tag, list) else []):
            if isinstance(t, str):
                out.append(TaskEntry(t, "tag", str(path)))
        if isinstance(group, str):  # older task files name their tag `group`
            out.append(TaskEntry(group, "tag", str(path)))
    return out


def scan_tasks(folder: Path) -> dict[str, TaskEntry]:
    """Every task, group and tag defined by the *.yaml files under `folder`."""
    index: dict[str, TaskEntry] = {}
    for path in sorted(folder.rglob("*.yaml")):
        for entry in _entries(path):
            if entry.kind == "tag" and entry.name in index:
                continue  # a tag never hides a task or group of the same name
            index[entry.name] = entry
    return index


def _cached_builtin(tasks_dir: Path, version: str) -> dict[str, TaskEntry]:
    key = stable_hash([INDEX_VERSION, version, str(tasks_dir)], 12)
    path = cache_dir() / "lmms-eval" / f"tasks-{version}-{key}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: TaskEntry(name, e["kind"], e["yaml_path"], tuple(e["members"])) for name, e in raw.items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    index = scan_tasks(tasks_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({n: {"kind": e.kind, "yaml_path": e.yaml_path, "members": list(e.members)}
                               for n, e in index.items()}), encoding="utf-8")
    tmp.replace(path)
    return index


@dataclass
class TaskIndex:
    entries: dict[str, TaskEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, tasks_dir: Path, version: str, include_paths: list[Path]) -> TaskIndex:
        entries = dict(_cached_builtin(tasks_dir, version))
        for folder in include_paths:
            entries.update(scan_tasks(folder))
        return cls(entries)

    def check(self, names: list[str]) -> None:
        """BenchError for the first name LMMs-Eval does not know, with the names it resembles."""
        for name in names:
            if name not in self.entries:
                close = difflib.get_close_matches(name, list(self.entries), n=4, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise BenchError(f"unknown LMMs-Eval task {name!r}{hint} (a paper benchmark: tempcompass, "
                                 "perceptiontest, nextqa, mvbench, egoschema, longvideobench; local tasks need "
                                 "--include-path)")

    def leaves(self, name: str, _seen: frozenset[str] = frozenset()) -> list[TaskEntry]:
        """The tasks that run for `name`: itself, a group's members (recursively) or a tag's tasks."""
        entry = self.entries.get(name)
        if entry is None or name in _seen:
            return []
        if entry.kind == "task":
            return [entry]
        seen = _seen | {name}
        if entry.kind == "group":
            return [leaf for member in entry.members for leaf in self.leaves(member, seen)]
        return [e for e in self.entries.values() if e.kind == "task" and _has_tag(e, name)]

    def config(self, name: str) -> dict[str, Any]:
        entry = self.entries[name]
        return task_config(Path(entry.yaml_path))


def _has_tag(entry: TaskEntry, tag: str) -> bool:
    data = read_yaml(Path(entry.yaml_path))
    tags = data.get("tag")
    return tag == tags or (isinstance(tags, list) and tag in tags) or data.get("group") == tag


def task_config(path: Path) -> dict[str, Any]:
    """A task's YAML with its `include:` files merged under it, as LMMs-Eval resolves them."""
    data = read_yaml(path)
    includes = data.pop("include", None)
    if includes is None:
        return data
    merged: dict[str, Any] = {}
    for inc in reversed([includes] if isinstance(includes, str) else list(includes)):
        inc_path = Path(inc) if Path(inc).is_file() else path.parent / str(inc)
        merged.update(task_config(inc_path))
    merged.update(data)
    return merged


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _data_files(kwargs: Any) -> list[str]:
    files = kwargs.get("data_files") if isinstance(kwargs, dict) else None
    if isinstance(files, str):
        return [files]
    if isinstance(files, list):
        return [str(f) for f in files]
    if isinstance(files, dict):
        return [str(f) for v in files.values() for f in ([v] if isinstance(v, str) else list(v))]
    return []


def data_problem(config: dict[str, Any], yaml_path: Path) -> str | None:
    """Why the task's data cannot be read on this machine, or None.

    Local files must exist. A Hub dataset is only checked when the Hub is off (HF_HUB_OFFLINE or
    HF_DATASETS_OFFLINE): then it must already be in the local Hugging Face cache. `video: True` in
    dataset_kwargs makes LMMs-Eval download the videos from the Hub whatever the loader."""
    path = str(config.get("dataset_path") or "")
    kwargs = config.get("dataset_kwargs") or {}
    if not path:
        return "its YAML names no dataset_path"
    if path in LOCAL_LOADERS or Path(path).expanduser().exists():
        missing = [f for f in _data_files(kwargs) if "://" not in f
                   and not (Path(f) if Path(f).is_absolute() else yaml_path.parent / f).exists()]
        if missing:
            return f"its data file {missing[0]} does not exist"
        if isinstance(kwargs, dict) and kwargs.get("video") and _offline():
            return "its dataset_kwargs has `video: True`, which downloads the videos from the Hub, and the Hub is off"
        return None
    if not _offline():
        return None
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(path, repo_type="dataset", local_files_only=True)
    except Exception:
        return (f"its data is the Hub dataset {path}, which is not in the local Hugging Face cache, and the Hub is "
                "off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE): download it first, or run with the Hub on")
    return None

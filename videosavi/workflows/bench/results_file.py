"""`OUT/<label>.json`: one model's scores, read back strictly and written atomically.

The file belongs to one model: the weights revision (and how LMMs-Eval ran it) recorded in it must match
the model being evaluated, or the run stops before anything is evaluated, since mixing two models'
scores under one label would pass one off as the other.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from videosavi.errors import BenchError
from videosavi.schemas.bench import BenchModel, BenchResults


def results_path(out: Path, label: str) -> Path:
    return out / f"{label}.json"


def read_results(path: Path) -> BenchResults:
    """A results file of ours; BenchError (one line) for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read {path}: {exc}") from exc
    try:
        return BenchResults.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise BenchError(f"{path} is not a savi bench results file ({where}: {err['msg']})") from exc


def load_results(path: Path) -> BenchResults | None:
    return read_results(path) if path.exists() else None


def check_same_model(path: Path, existing: BenchModel, model: BenchModel) -> None:
    """Refuse to add one model's scores to another's file, or scores measured another way."""
    if existing.revision != model.revision:
        raise BenchError(f"{path} holds results of another model ({existing.name_or_path}, revision "
                         f"{existing.revision}), not of {model.name_or_path} ({model.revision}): use another --out "
                         "or --label")
    for name in ("wrapper", "frames", "base_url"):
        old, new = getattr(existing, name), getattr(model, name)
        if old != new:
            raise BenchError(f"{path} holds results of this model run with {name} {old}, not {new}: use another "
                             "--label to keep both")


def save_results(path: Path, results: BenchResults) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def all_results(folder: Path) -> list[tuple[Path, BenchResults]]:
    """Every results file in a bench output folder, sorted by iteration then label."""
    if not folder.is_dir():
        raise BenchError(f"{folder} is not a folder of savi bench results")
    found = [(p, read_results(p)) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]
    for p, r in found:
        if r.label != p.stem:
            raise BenchError(f"{p} holds the results labelled {r.label!r}: a results file is named <label>.json")
    if not found:
        raise BenchError(f"{folder} holds no savi bench results (<label>.json): run savi bench first")
    return sorted(found, key=lambda pr: (pr[1].model.iteration is None, pr[1].model.iteration or 0, pr[1].label))

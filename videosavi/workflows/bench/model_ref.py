"""The model `savi bench` evaluates: what it is, which weights, and which LMMs-Eval wrapper runs it.

`--model` is a local folder, a hub id, a tiny-* test model, a model served behind an OpenAI-compatible
API (`--base-url`), or a `savi loop` folder with `--iteration N` (N: the merged model trained on
revision iterN; 0: the loop's base model, read from iter1-model/train.json). The wrapper follows the
checkpoint's `model_type`, one per architecture that LMMs-Eval runs natively through transformers;
`--lmms-model` picks another. Everything is checked here, before LMMs-Eval is started: a folder without a
config or weights, or an architecture without a wrapper, is one line, not a minute of LMMs-Eval start-up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from videosavi.errors import BenchError, ModelError
from videosavi.schemas.bench import BenchModel, is_label

# model_type -> (LMMs-Eval wrapper, the name of its frames argument)
WRAPPERS: dict[str, tuple[str, str]] = {
    "qwen2_vl": ("qwen2_vl", "max_num_frames"),
    "qwen2_5_vl": ("qwen2_5_vl", "max_num_frames"),
    "qwen3_vl": ("qwen3_vl", "max_num_frames"),
    "internvl": ("internvl_hf", "num_frames"),
    "llava_onevision": ("llava_hf", "max_frames_num"),
    "llava": ("llava_hf", "max_frames_num"),  # LLaVA-NeXT-Interleave: a LLaVA with a Qwen2 language model
    "video_llava": ("video_llava", "num_frames"),
}
FRAMES_ARG = {wrapper: arg for wrapper, arg in WRAPPERS.values()} | {"openai": "max_frames_num"}
# Wrappers of architectures built for a fixed number of frames: Video-LLaVA reads exactly 8 (LMMs-Eval asserts it).
FIXED_FRAMES = {"video_llava": 8}
OPENAI = "openai"
_LOOP_MODEL = re.compile(r"^iter(\d+)-model$")


@dataclass(frozen=True)
class ModelRef:
    """A model ready for LMMs-Eval: `model_args` are the wrapper's, without any secret."""

    given: str
    source: str  # the folder, hub id or served model name LMMs-Eval loads
    revision: str
    label: str
    iteration: int | None
    model_type: str | None
    wrapper: str
    frames: int
    model_args: dict[str, str] = field(default_factory=dict)
    base_url: str | None = None
    card: Path | None = None

    def record(self) -> BenchModel:
        return BenchModel(name_or_path=self.given, revision=self.revision, iteration=self.iteration,
                          wrapper=self.wrapper, model_type=self.model_type, frames=self.frames,
                          base_url=self.base_url, card=str(self.card) if self.card else None)


def is_loop_dir(path: Path) -> bool:
    return path.is_dir() and any(_LOOP_MODEL.match(p.name) for p in path.iterdir() if p.is_dir())


def loop_model(loop: Path, iteration: int) -> str:
    """The model of `iteration` in a `savi loop` folder (0: the base model it started from)."""
    if iteration == 0:
        record = loop / "iter1-model" / "train.json"
        try:
            base = json.loads(record.read_text(encoding="utf-8"))["base_model"]["name_or_path"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"cannot tell the base model of {loop}: {record} is missing or unreadable "
                             f"({type(exc).__name__}); give the base model with --model") from exc
        return str(base)
    merged = loop / f"iter{iteration}-model" / "merged"
    if not (merged.parent / "train.json").is_file() or not merged.is_dir():
        raise BenchError(f"iteration {iteration} of {loop} is not trained yet (no {merged} beside a train.json)")
    return str(merged)


def default_label(given: str, iteration: int | None) -> str:
    """base / iterN for an iteration, else the folder's name or the hub id with / as --."""
    if iteration is not None:
        return "base" if iteration == 0 else f"iter{iteration}"
    path = Path(given)
    name = path.name if path.exists() else given.replace("/", "--")
    if name == "merged" and path.parent.name:  # runs/loop/iter2-model/merged -> iter2-model
        name = path.parent.name
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    return label[:100]


def _local(folder: Path, wrapper: str | None) -> tuple[str, str | None, str]:
    """(revision, model_type, wrapper) of a model folder."""
    from videosavi.builders.generate.models.weights import local_revision

    config = folder / "config.json"
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise BenchError(f"model {folder} cannot be loaded: {config} is missing or not a JSON config "
                         f"({type(exc).__name__})") from exc
    try:
        revision = local_revision(folder)
    except ModelError as exc:
        raise BenchError(f"model {folder} cannot be loaded: {exc}") from exc
    _check_safetensors(folder)
    return revision, model_type, _wrapper(str(folder), model_type, wrapper)


def _check_safetensors(folder: Path) -> None:
    """Each safetensors file's header must read (a truncated or foreign file fails here in milliseconds,
    not after LMMs-Eval's start-up)."""
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="numpy") as f:
                f.keys()
        except Exception as exc:
            raise BenchError(f"model {folder} cannot be loaded: {path.name} is not a readable safetensors file "
                             f"({type(exc).__name__}: {str(exc)[:120]})") from exc


def _hub(repo: str, revision: str | None, wrapper: str | None) -> tuple[str, str | None, str]:
    """(commit, model_type, wrapper) of a hub model, from the local cache or the Hub."""
    from huggingface_hub import hf_hub_download

    try:
        config_path = hf_hub_download(repo, "config.json", revision=revision)
    except Exception as exc:
        raise BenchError(f"model {repo!r} cannot be loaded: it is not a local folder and its config cannot be had "
                         f"from the Hub or the local cache ({type(exc).__name__})") from exc
    commit = Path(config_path).parent.name  # .../snapshots/<commit>/config.json
    try:
        model_type = json.loads(Path(config_path).read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    return commit, model_type, _wrapper(repo, model_type, wrapper)


def _device_args(wrapper: str, device: str) -> dict[str, str]:
    """Where the wrapper puts the model: `device_map` for most; LMMs-Eval's video_llava wrapper honours the
    run's --device only with device_map "auto" (any other map sends it to cuda:0)."""
    return {"device_map": "auto"} if wrapper == "video_llava" else {"device_map": device}


def _wrapper(name: str, model_type: str | None, wrapper: str | None) -> str:
    if wrapper:
        return wrapper
    if model_type in WRAPPERS:
        return WRAPPERS[model_type][0]
    known = ", ".join(sorted(WRAPPERS))
    raise BenchError(f"model {name} has model_type {model_type!r}, which no LMMs-Eval wrapper here runs natively "
                     f"({known}); choose one with --lmms-model, or serve it and pass --base-url")


def resolve_model(model: str, *, iteration: int | None = None, label: str | None = None, base_url: str | None = None,
                  wrapper: str | None = None, frames: int = 32, device: str = "cpu",
                  model_revision: str | None = None) -> ModelRef:
    """Everything LMMs-Eval needs about `model`; BenchError when it cannot be loaded."""
    from videosavi.builders.generate.models.tiny import ensure_tiny_model, is_tiny_name

    if frames < 1:
        raise BenchError(f"--frames must be >= 1, got {frames}")
    given = model
    path = Path(model).expanduser()
    if base_url is None and is_loop_dir(path):
        if iteration is None:
            raise BenchError(f"{model} is a `savi loop` folder: say which model with --iteration N (0: the base model)")
        model = given = loop_model(path, iteration)
        path = Path(model).expanduser()
    label = label or default_label(given, iteration)
    if not is_label(label):
        raise BenchError(f"--label {label!r} must be letters, digits, '.', '_' or '-' (it names {label}.json)")
    card: Path | None = None
    if base_url is not None:
        source, model_type, wrapper = model, None, wrapper or OPENAI
        revision = f"served:{model_revision or model}"
        args = {"model": model, "base_url": base_url}
    else:
        if is_tiny_name(model) and not path.exists():
            path = ensure_tiny_model(model)
        if path.exists():
            if not path.is_dir():
                raise BenchError(f"model {model} cannot be loaded: it is a file, not a model folder")
            source = str(path.resolve())
            revision, model_type, wrapper = _local(path, wrapper)
            card = path / "README.md" if (path / "README.md").is_file() else None
        elif "/" in model and not model.startswith((".", "/", "~")):
            source = model
            revision, model_type, wrapper = _hub(model, model_revision, wrapper)
        else:
            raise BenchError(f"model {model!r} cannot be loaded: no such folder, and not a hub id (ORG/NAME)")
        args = {"pretrained": source, **_device_args(wrapper, device)}
    frames = FIXED_FRAMES.get(wrapper, frames)
    frames_arg = FRAMES_ARG.get(wrapper)
    if frames_arg is not None:
        args[frames_arg] = str(frames)
    return ModelRef(given=given, source=source, revision=revision, label=label, iteration=iteration,
                    model_type=model_type, wrapper=wrapper, frames=frames, model_args=args, base_url=base_url,
                    card=card)

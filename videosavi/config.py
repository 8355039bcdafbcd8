"""Build configuration: one YAML file, validated by pydantic, paths relative to a data root.

Source paths are relative to `--data-root` (or `VIDEOSAVI_DATA_ROOT`), so one config serves any
machine. Only the fields that change the data enter the config hash that guards a run directory
(worker counts and batch sizes do not).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from videosavi.curation_config import CurationConfig
from videosavi.errors import ConfigError
from videosavi.hashing import stable_hash
from videosavi.schemas.enums import SourceKind
from videosavi.schemas.frames import check_resize
from videosavi.training_options import TrainingOptions

DEFAULT_PATTERNS: dict[str, str] = {
    "star": "{video_id}.mp4",
    "vidal": "{folder}/{video_id}.mp4",
    "webvid": "{page_dir}/{videoid}.mp4",
    "folder": "",
}
VIDEO_EXTENSIONS = [".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    kind: SourceKind
    root: str = Field(description="folder holding the video files, relative to the data root")
    manifest: str | None = Field(default=None, description="manifest file (a glob for WebVid CSVs)")
    pattern: str | None = Field(
        default=None, description="file path under root, as a format string of manifest columns"
    )
    quota: int = Field(ge=0, description="videos to sample from this source")
    extensions: list[str] = Field(default_factory=lambda: list(VIDEO_EXTENSIONS))
    follow_symlinks: bool = Field(
        default=False, description="open files whose symbolic links lead outside root (off: they are unavailable)"
    )

    @model_validator(mode="after")
    def _manifest_needed(self) -> SourceConfig:
        if self.kind != "folder" and not self.manifest:
            raise ValueError(f"a {self.kind} source needs a manifest")
        return self

    @property
    def file_pattern(self) -> str:
        return self.pattern or DEFAULT_PATTERNS[self.kind]

    def key_dump(self) -> dict[str, Any]:
        """The fields as hashed into config and sample keys; `follow_symlinks: false` (the default) is
        left out, so configs written before the option existed keep their keys and their run dirs."""
        dump = self.model_dump(mode="json")
        if not dump.get("follow_symlinks"):
            dump.pop("follow_symlinks", None)
        return dump


class FramesConfig(_Strict):
    num_frames: int = Field(default=32, ge=1)
    resize: tuple[int, int] | None = Field(default=None, description="(height, width) or null for native size")

    @field_validator("resize")
    @classmethod
    def _positive_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        return check_resize(value)
    workers: int = Field(default=2, ge=1, description="decoder worker processes")
    timeout_s: float = Field(default=60.0, gt=0, description="per-video decode timeout")
    max_tasks_per_worker: int = Field(default=200, ge=1)


class QuestionsConfig(_Strict):
    spatial: int = Field(default=3, ge=0)
    temporal: int = Field(default=3, ge=0)


class SamplingParams(_Strict):
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    max_new_tokens: int = Field(default=256, ge=1)


# --- the model: one class per backend, chosen by `backend` ---------------------------------------------------

# Every field the flat model section had before it was split per backend, at its old default. A field of
# another backend at this value is dropped (configs and build.json files written before the split hold them
# all); at any other value it is refused, naming the backend it belongs to.
_LEGACY_DEFAULTS: dict[str, Any] = {
    "revision": None, "dtype": "auto", "device": "auto", "prefix_cache_mb": None, "base_url": None,
    "api_key_env": "OPENAI_API_KEY", "concurrency": 8, "request_timeout_s": 120.0, "max_retries": 4,
    "video_transport": "images",
}
_IN_PROCESS_ONLY = ("dtype", "device", "prefix_cache_mb")
_OPENAI_ONLY = ("base_url", "api_key_env", "concurrency", "request_timeout_s", "max_retries", "video_transport")
# The model fields that change the data, as they were hashed before the split (see `data_dump`).
_MODEL_DATA_KEYS = ("backend", "name_or_path", "revision", "dtype", "constrained", "video_transport")
BACKENDS = ("tiny", "transformers", "openai")


class _ModelBase(_Strict):
    name_or_path: str = "tiny-qwen2-vl"
    revision: str | None = None
    batch_size: int = Field(default=8, ge=1)
    constrained: bool = Field(default=True, description="grammar-constrained decoding for JSON stages")

    @model_validator(mode="before")
    @classmethod
    def _foreign_fields(cls, data: Any) -> Any:
        """Drop another backend's fields left at their old defaults; refuse them otherwise, by name."""
        if not isinstance(data, dict):
            return data
        backend = data.get("backend", "tiny")
        out = dict(data)
        for key in [k for k in data if k not in cls.model_fields and k in _LEGACY_DEFAULTS]:
            if data[key] == _LEGACY_DEFAULTS[key]:
                del out[key]
                continue
            owner = "the openai backend" if key in _OPENAI_ONLY else "the tiny and transformers backends"
            raise ValueError(f"model.{key} is read by {owner} only, and this model's backend is "
                             f"{backend!r}: remove {key}, or set backend to the one it belongs to")
        return out

    @property
    def in_process(self) -> bool:
        """Whether the model runs in this process (and so wants a GPU of its own under Ray)."""
        return self.backend in ("tiny", "transformers")  # type: ignore[attr-defined]  # each backend class defines it

    def data_dump(self) -> dict[str, Any]:
        """The fields that change the data, in the shape hashed before the model section was split per
        backend (absent fields at their old defaults), so existing run directories keep their hash."""
        dump = {**_LEGACY_DEFAULTS, **self.model_dump(mode="json")}
        return {k: dump[k] for k in _MODEL_DATA_KEYS}


class _InProcessModel(_ModelBase):
    dtype: str = "auto"
    device: str = "auto"
    prefix_cache_mb: float | None = Field(
        default=None,
        ge=0,
        description="memory for kept video prefixes (key/value cache), MB; none = 20% of free GPU memory on "
        "CUDA, 512 on CPU; 0 = no prefix reuse",
    )


class TinyModelConfig(_InProcessModel):
    """A random-weight model of a real architecture, built in code (tests and the demo): its text is
    meaningless, so a build uses it only when asked for (see `check_random_weights`)."""

    backend: Literal["tiny"] = "tiny"


class TransformersModelConfig(_InProcessModel):
    """Any `AutoModelForImageTextToText` video model, run in this process."""

    backend: Literal["transformers"] = "transformers"


class OpenAIModelConfig(_ModelBase):
    """An OpenAI-compatible chat-completions server (vLLM, LMDeploy, SGLang, the OpenAI API)."""

    backend: Literal["openai"] = "openai"
    base_url: str = Field(description="the server's API root, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(default=8, ge=1, description="requests in flight at once")
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="total seconds one HTTP request may take, from connecting to the reply's "
        "last byte (a deadline, not a per-read timeout)")
    max_retries: int = Field(default=4, ge=0)
    video_transport: Literal["images", "video_url"] = Field(
        default="images", description="send frames as JPEG image parts, or as one MP4 video_url part")
    server: Literal["auto", "vllm", "sglang", "openai"] = Field(
        default="auto", description="which server this is, for the structured-output options it understands; "
        "auto: ask it (/v1/models, /version)")
    send_seed: bool | None = Field(
        default=None, description="send each call's seed; null: to every server but vLLM, whose CPU engine dies on "
        "seeded requests prefilled in chunks (docs/models.md)")


def _backend_tag(value: Any) -> str:
    backend = value.get("backend", "tiny") if isinstance(value, dict) else getattr(value, "backend", "tiny")
    return str(backend)


def _refuse_vllm(value: Any) -> Any:
    """`backend: vllm` is not built in: say what to use instead, where the config is read."""
    if _backend_tag(value) == "vllm":
        raise ValueError("backend 'vllm' is not built in: serve the model with vLLM (`vllm serve MODEL`) and use "
                         "backend: openai with base_url: http://HOST:PORT/v1 (docs/models.md)")
    return value


ModelConfig = Annotated[
    Annotated[TinyModelConfig, Tag("tiny")]
    | Annotated[TransformersModelConfig, Tag("transformers")]
    | Annotated[OpenAIModelConfig, Tag("openai")],
    Discriminator(
        _backend_tag, custom_error_type="backend",
        custom_error_message=f"model.backend must be one of {', '.join(BACKENDS)}",
    ),
    BeforeValidator(_refuse_vllm),
]
AnyModelConfig = TinyModelConfig | TransformersModelConfig | OpenAIModelConfig
_MODEL_ADAPTER: TypeAdapter[Any] = TypeAdapter(ModelConfig)


class CritiqueParams(SamplingParams):
    """The critique stage's sampling, and optionally another model as the critic (the paper's Table 5: an
    external critic such as GPT-4o behind the openai backend). Unset, the model critiques itself."""

    model: ModelConfig | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="another model as the critic (any backend); none: the model critiques its own answers")

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling parameters alone (what call keys and each row's `generation` hold)."""
        return self.model_dump(exclude={"model"})


class StagesConfig(_Strict):
    """`stages:` the sampling of each stage (`stages.<name>`), and how the build treats failed calls.

    The paper's four stages are typed fields: their defaults are part of every config's hash. Any other
    stage (the retrospective `describe`, or a stage added later) is a section of the same shape under its
    name, checked against the stage registry (builders/generate/stages) when a build starts; without it
    the stage runs with the defaults its module declares, and the config's hash stays what it was.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, SamplingParams | None] = Field(init=False)  # pydantic: the extras are typed

    question: SamplingParams = SamplingParams(temperature=0.8, max_new_tokens=512)
    answer: SamplingParams = SamplingParams(temperature=0.7, max_new_tokens=256)
    critique: CritiqueParams = CritiqueParams(temperature=0.2, max_new_tokens=768)
    refine: SamplingParams = SamplingParams(temperature=0.2, max_new_tokens=384)
    max_attempts: int = Field(default=3, ge=1, description="tries per structured call before quarantine")
    max_failed_share: float = Field(
        default=0.1, ge=0, le=1, description="share of the videos whose model calls may fail (left pending for the "
        "next run) before the build stops and fails; a build that loses every call always fails")

    def sections(self) -> dict[str, SamplingParams]:
        """The sections of the stages that are not typed fields, as given (null ones left out)."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}

    def section(self, stage: str) -> SamplingParams | None:
        """Stage `stage`'s section: a typed field, or as given; None when the config has none."""
        if stage in _STAGE_FIELDS:
            return getattr(self, stage)
        return self.sections().get(stage)


_STAGE_FIELDS = ("question", "answer", "critique", "refine")


def model_config(**fields: Any) -> AnyModelConfig:
    """The model config for `fields` (`backend` picks the class; default tiny); ConfigError when invalid."""
    try:
        return _MODEL_ADAPTER.validate_python(fields)
    except ValidationError as exc:
        raise ConfigError(f"invalid model settings: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if p not in ("tiny", "transformers", "openai", "vllm"))
    return f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}"


class OutputConfig(_Strict):
    pairs_per_shard: int = Field(default=5000, ge=1)


# The Hub's rule for a custom license: `license: other` plus a slug name and a link (a URL, or a file
# of the repository such as LICENSE.md, optionally with an #anchor).
_LICENSE_NAME = r"[a-z0-9]+(?:[-.][a-z0-9]+)*"
_LICENSE_LINK = r"(?:https?://\S+|[A-Za-z0-9_][A-Za-z0-9_./-]*(?:#[A-Za-z0-9_-]+)?)"


def license_problem(license: str, license_name: str | None, license_link: str | None) -> str | None:
    """What is wrong with a card's license fields, or None (pure; the config and the card both ask)."""
    import re

    if license == "other":
        if not license_name or not license_link:
            return ("license 'other' needs license_name (a slug, e.g. videosavi-source-terms) and license_link "
                    "(a URL, or a file in the repository such as LICENSE.md): the Hub requires both")
        if not re.fullmatch(_LICENSE_NAME, license_name):
            return f"license_name {license_name!r} must be a slug: lowercase letters and digits joined by '-' or '.'"
        if not re.fullmatch(_LICENSE_LINK, license_link):
            return f"license_link {license_link!r} must be an http(s) URL or a file path in the repository"
        return None
    if license_name or license_link:
        return f"license_name/license_link are only read with license 'other' (the license is {license!r})"
    return None


class EvalConfig(_Strict):
    """Videos reserved for `savi eval`: a video is held out iff the hash of (salt, source, uid) falls
    below `holdout`. The rule ignores the seed, so every build of any seed skips the same videos."""

    holdout: float = Field(gt=0, lt=1, description="share of each source's videos reserved for evaluation")
    salt: str = Field(default="videosavi-eval", min_length=1, description="changes which videos are held out")


class BuildConfig(_Strict):
    name: str = "videosavi"
    seed: int = 42
    license: str = "cc-by-nc-4.0"
    license_name: str | None = Field(default=None, description="with license 'other': the license's slug name")
    license_link: str | None = Field(default=None, description="with license 'other': a URL or a file in the repo")
    sources: dict[str, SourceConfig]
    frames: FramesConfig = FramesConfig()
    questions: QuestionsConfig = QuestionsConfig()
    model: ModelConfig = Field(default_factory=TinyModelConfig)
    stages: StagesConfig = StagesConfig()
    curation: CurationConfig = Field(
        default_factory=CurationConfig, description="the filters and balance a build applies (docs/curation.md)")
    output: OutputConfig = OutputConfig()
    eval: EvalConfig | None = Field(default=None, description="held-out videos for `savi eval`; none if absent")
    training: TrainingOptions = Field(
        default_factory=TrainingOptions, description="how `savi train --config` and `savi loop` train on the "
        "revisions built from this config (the same options as their flags, which override it)")
    retrospective: bool = Field(
        default=False, description="ISR-DPO's self-retrospective context: before its questions, the model describes "
        "each video (given its description from the previous iteration) and the critic reads that description")

    @field_validator("training", mode="before")
    @classmethod
    def _renamed_training_keys(cls, value: Any) -> Any:
        if isinstance(value, dict) and "batch_size" in value:
            raise ValueError("training.batch_size is now training.per_device_batch_size (pairs per device per "
                             "step, TRL's per_device_train_batch_size; --per-device-batch-size): rename the key")
        return value

    @model_validator(mode="after")
    def _source_names(self) -> BuildConfig:
        import re

        for name in self.sources:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"source name {name!r} must be lowercase letters, digits, '-' or '_'")
        return self

    @model_validator(mode="after")
    def _license(self) -> BuildConfig:
        problem = license_problem(self.license, self.license_name, self.license_link)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _something_to_sample(self) -> BuildConfig:
        """A config that can sample nothing is a mistake, not an empty dataset to build and publish."""
        if not self.sources:
            raise ValueError("sources is empty: name at least one source (see configs/videosavi.yaml)")
        if all(s.quota == 0 for s in self.sources.values()):
            raise ValueError(f"every source has quota 0 ({', '.join(self.sources)}): nothing would be sampled")
        return self

    # Fields that change no data: excluded from the hash that guards a run directory.
    _OPERATIONAL = {
        "frames": {"workers", "timeout_s", "max_tasks_per_worker"},
        "output": {"pairs_per_shard"},
        "stages": {"max_failed_share"},
    }

    def data_dump(self) -> dict[str, Any]:
        dump = self.model_dump(mode="json")
        # A custom license's name and link change no data (and runs made before they existed keep their hash).
        dump.pop("license_name", None)
        dump.pop("license_link", None)
        if dump.get("eval") is None:  # configs without a holdout keep the hash they always had
            dump.pop("eval", None)
        if not dump.get("retrospective"):  # nor do builds without the retrospective stage
            dump.pop("retrospective", None)
        for stage in [k for k, v in dump["stages"].items() if v is None]:  # an unset section changes nothing
            dump["stages"].pop(stage)
        for section, keys in self._OPERATIONAL.items():
            for k in keys:
                dump[section].pop(k, None)
        dump["sources"] = {name: src.key_dump() for name, src in self.sources.items()}
        dump["model"] = self.model.data_dump()
        critic = self.stages.critique.model
        if critic is not None:  # absent (not null) without a critic: configs without one keep their hash
            dump["stages"]["critique"]["model"] = critic.data_dump()
        dump.pop("training", None)  # how the next model is trained changes no data of this build
        return dump

    def data_hash(self) -> str:
        return stable_hash(self.data_dump())


def resolve_data_root(data_root: str | Path | None, config_path: Path | None = None) -> Path:
    """--data-root, else VIDEOSAVI_DATA_ROOT, else the current directory."""
    if data_root:
        return Path(data_root).expanduser().resolve()
    env = os.environ.get("VIDEOSAVI_DATA_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    return Path.cwd().resolve()


def bundled_config(name: str) -> Path:
    """Path of a config shipped with the package (`demo`, `videosavi`)."""
    from importlib import resources

    path = resources.files("videosavi.configs") / f"{name}.yaml"
    return Path(str(path))


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> BuildConfig:
    """Read and validate a YAML config; `None` means the bundled demo config.

    A bare name such as `demo` or `videosavi` picks a bundled config.
    """
    if path is None:
        path = bundled_config("demo")
    p = Path(path)
    if not p.is_file() and not p.suffix and bundled_config(str(path)).is_file():
        p = bundled_config(str(path))
    raw = _read_raw(p)
    if overrides:
        raw = _deep_merge(raw, overrides)
    try:
        return BuildConfig.model_validate(raw)
    except ValidationError as exc:
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{p} is not a valid videosavi config: {_first_error(exc)}{more}") from exc


def _read_raw(p: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The config's mapping, with `extends: BASE` resolved: a config names another (a path relative to
    itself, or a bundled name) and states only what differs; a key set to null removes the base's key
    (its default applies). configs/experiments/ are written this way."""
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8 text (byte {exc.start} cannot be decoded): save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config {p}: {exc.strerror or exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p} is not a videosavi config: expected a mapping of keys (sources, model, ...), "
                          f"found a YAML {type(raw).__name__}")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{p}: extends must name one config (a path relative to {p.parent}, or a bundled name)")
    base = Path(parent) if Path(parent).is_absolute() else p.parent / parent
    if not base.is_file() and not Path(parent).suffix and bundled_config(parent).is_file():
        base = bundled_config(parent)
    if base.resolve() in (*seen, p.resolve()):
        raise ConfigError(f"{p}: extends leads back to {base} (a loop of configs)")
    return _extend(_read_raw(base, (*seen, p.resolve())), raw)


def _extend(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in child.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _extend(out[k], v)
        else:
            out[k] = v
    return out


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

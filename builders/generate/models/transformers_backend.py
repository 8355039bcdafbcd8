"""Run any video-capable `AutoModelForImageTextToText` checkpoint in-process with transformers.

Qwen2/2.5/3-VL, InternVL and LLaVA-OneVision (and the tiny in-code models, which are saved
checkpoints of the same classes) all go through `AutoProcessor` + `AutoModelForImageTextToText`:
the chat template places the video placeholder, the processor expands it for the frames we decoded
ourselves (transformers' own video readers are not used), and one left-padded `generate` serves a
batch of requests across videos. Sampling, token limits and JSON grammars are applied per row by
`RowControlProcessor`, so a request's text is the same whatever else is in its batch.

Each video is encoded once: its prompt prefix (up to the video tokens) is prefilled once and its
key/value tensors are kept in a byte-bounded LRU (`PrefixReuse`, `PrefixCache`), so each call prefills
only its own text. `model.prefix_cache_mb: 0` turns this off; `stats` counts the work either way.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videosavi.builders.generate.models.base import GenerationRequest, GenerationResult, error_result, video_identity
from videosavi.builders.generate.models.prefix_cache import PrefixCache
from videosavi.builders.generate.models.prefix_reuse import PrefixReuse, PrefixUnsupported, prefix_key, prefix_length
from videosavi.builders.generate.models.stats import BackendStats
from videosavi.errors import ModelError
from videosavi.schemas import ModelInfo

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from videosavi.config import TinyModelConfig, TransformersModelConfig

    ModelConfig = TinyModelConfig | TransformersModelConfig

log = logging.getLogger(__name__)

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def pick_device(requested: str) -> str:
    import torch

    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(requested: str, device: str) -> Any:
    """bf16 on a GPU that has it, else fp32 (CPU kernels for half types are slow or missing)."""
    import torch

    if requested and requested != "auto":
        if requested not in _DTYPES:
            raise ModelError(f"unknown dtype {requested!r}; use auto, {', '.join(sorted(_DTYPES))}")
        return getattr(torch, _DTYPES[requested])
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


# Default bound on kept prefixes: a share of the GPU memory free after loading the model (a 7B model's
# 32-frame prefix at 448x448 is ~0.25 GB in bf16), or a fixed amount in host memory.
CUDA_FREE_SHARE = 0.2
CPU_PREFIX_CACHE_MB = 512


def prefix_budget_bytes(prefix_cache_mb: float | None, device: str) -> int:
    """Bytes the kept prefixes may hold: the configured MB, else the device's default (see above)."""
    import torch

    if prefix_cache_mb is not None:
        return int(prefix_cache_mb * 2**20)
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * CUDA_FREE_SHARE)
    return CPU_PREFIX_CACHE_MB * 2**20


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


SMALL_MODEL_PARAMS = 20_000_000


def small_model_threads(model: Any, device: str) -> int | None:
    """1 for a small model on the CPU (a tiny model, or one trained from it and merged, as the demo's
    iteration 2 loads), else None (torch's own choice): see `cpu_thread_limit`."""
    if device != "cpu":
        return None
    return 1 if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS else None


@contextmanager
def cpu_thread_limit(threads: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads for the duration, then restore the previous count.

    A model of a few hundred thousand parameters does microsecond-sized matmuls: spreading them over
    OpenMP threads costs more in wake-ups than it saves, and on a busy machine a thread that must wait
    for a core turns every op into milliseconds (measured: a tiny build's model calls 5-13x slower
    with 2 threads than with 1 on a shared 2-core machine, with identical output).
    """
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before <= threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TransformersBackend:
    """In-process transformers generation; see the module docstring."""

    def __init__(
        self,
        name_or_path: str | Path,
        cfg: ModelConfig,
        *,
        backend_name: str = "transformers",
        display_name: str | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        from videosavi.builders.generate.models.weights import load_pretrained, local_revision

        device = pick_device(cfg.device)
        dtype = pick_dtype(cfg.dtype, device)
        source = str(name_or_path)
        is_local = Path(source).is_dir()
        if not is_local and Path(source).expanduser().exists():
            raise ModelError(f"model path {source} exists but is not a directory")
        model, processor = load_pretrained(source, cfg.revision, dtype)
        if is_local:
            rev = local_revision(source)
        else:
            rev = getattr(model.config, "_commit_hash", None) or cfg.revision or "unresolved"
        self._setup(model, processor, cfg, device, dtype, cpu_threads,
                    ModelInfo(backend=backend_name, name_or_path=display_name or source, revision=rev,
                              architecture=getattr(model.config, "model_type", None)))

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, cfg: ModelConfig, info: ModelInfo,
                    cpu_threads: int | None = None) -> TransformersBackend:
        """A backend around a model built in code (benchmarks of real-size random-weight models)."""
        self = cls.__new__(cls)
        device = pick_device(cfg.device)
        self._setup(model, processor, cfg, device, pick_dtype(cfg.dtype, device), cpu_threads, info)
        return self

    def _setup(self, model: Any, processor: Any, cfg: ModelConfig, device: str, dtype: Any,
               cpu_threads: int | None, info: ModelInfo) -> None:
        import torch

        self.cfg = cfg
        self.cpu_threads = cpu_threads if cpu_threads is not None else small_model_threads(model, device)
        self.device = device
        self.dtype = dtype
        self.processor = processor
        self.model = model
        self.info = info
        self.model.to(self.device).eval()
        tokenizer: PreTrainedTokenizerBase | None = getattr(self.processor, "tokenizer", None)
        if tokenizer is None:
            raise ModelError(f"{info.name_or_path} has no tokenizer in its processor; is it a vision-language model?")
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.eos_ids = _as_list(self.model.generation_config.eos_token_id) or _as_list(self.tokenizer.eos_token_id)
        for eos in _as_list(self.tokenizer.eos_token_id):
            if eos not in self.eos_ids:
                self.eos_ids.append(eos)
        if not self.eos_ids:
            raise ModelError(f"{info.name_or_path} defines no EOS token; cannot tell when a reply ends")
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eos_ids[0]
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._grammars: Any = None
        self.stats = BackendStats()
        self.prefix_cache = PrefixCache(prefix_budget_bytes(cfg.prefix_cache_mb, self.device), self.stats)
        self._reuse: PrefixReuse | None = None
        if cfg.prefix_cache_mb != 0:
            try:
                self._reuse = PrefixReuse(self.model, self.processor, self.tokenizer, self.device, self.dtype,
                                          self.prefix_cache, self.stats, self.pad_id)
            except PrefixUnsupported as exc:
                log.warning("prefix reuse off for %s: %s", info.name_or_path, exc)
        self._torch = torch

    # -- public API ------------------------------------------------------------------------------

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Sub-batches of at most `cfg.batch_size`; results in request order.

        Calls that can reuse a video prefix form one group whatever their frame count (no pixels go
        into their `generate`). The others are grouped by frame count (InternVL and LLaVA-OneVision
        stack the videos of a batch, so they must match). Each group is sorted by token budget so short
        calls do not wait on long ones.
        """
        if self.model is None:
            raise ModelError("backend is closed")
        results: list[GenerationResult | None] = [None] * len(requests)
        prompts: dict[int, _Prompt] = {}
        for i, r in enumerate(requests):
            try:
                text = self.processor.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
            except Exception as exc:
                results[i] = error_result(f"cannot render the chat template: {type(exc).__name__}: {exc}")
                continue
            reuse = self._reuse is not None and self._reuse.accepts(r, text)
            prompts[i] = _Prompt(r, text, reuse)
        groups: dict[tuple[bool, int], list[int]] = {}
        for i, p in prompts.items():
            frames = -1 if p.request.frames is None else int(p.request.frames.shape[0])
            groups.setdefault((p.reuse, 0 if p.reuse else frames), []).append(i)
        size = self.cfg.batch_size
        with cpu_thread_limit(self.cpu_threads if self.device == "cpu" else None):
            for key in sorted(groups):
                order = sorted(groups[key], key=lambda i: requests[i].max_new_tokens)
                for start in range(0, len(order), size):
                    idx = order[start : start + size]
                    for i, res in zip(idx, self._generate_isolated([prompts[i] for i in idx]), strict=True):
                        results[i] = res
        self.stats.requests += len(requests)
        self.stats.video_requests += sum(1 for r in requests if r.frames is not None)
        return [r if r is not None else error_result("internal: no result") for r in results]

    def close(self) -> None:
        self.model = None
        self.processor = None
        self._grammars = None
        self._reuse = None
        self.prefix_cache.clear()
        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()

    # -- internals -------------------------------------------------------------------------------

    def _generate_isolated(self, batch: list[_Prompt]) -> list[GenerationResult]:
        """Run a batch; if it fails as a whole, run its requests one by one so only bad ones fail.

        Per-row seeding makes the one-by-one results equal to what the batch would have given.
        """
        try:
            return self._generate_batch(batch)
        except PrefixUnsupported as exc:
            log.warning("prefix reuse off from now on (%s); using full prompts", exc)
            self._reuse = None
            return self._generate_isolated([_Prompt(p.request, p.text, False) for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                log.warning("generation failed: %s", exc)
                return [error_result(f"{type(exc).__name__}: {exc}")]
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            out: list[GenerationResult] = []
            for prompt in batch:
                out.extend(self._generate_isolated([prompt]))
            return out

    def _grammar_cache(self) -> Any:
        if self._grammars is None:
            from videosavi.builders.generate.models.grammar import GrammarCache

            self._grammars = GrammarCache(self.tokenizer, self.vocab_size, self.eos_ids)
        return self._grammars

    def encode(self, batch: list[GenerationRequest]) -> dict[str, Any]:
        """The processor's inputs for whole prompts (token ids, pixel values): exactly what the uncached
        path feeds the model; public so `savi doctor` can check the processor alone."""
        return self._encode([
            _Prompt(r, self.processor.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True),
                    False)
            for r in batch
        ])

    def _encode(self, batch: list[_Prompt]) -> dict[str, Any]:
        """Full prompts through the processor (the vision tower then runs inside `generate`)."""
        videos = [p.request.frames for p in batch if p.request.frames is not None]
        kwargs: dict[str, Any] = {"text": [p.text for p in batch], "padding": True, "return_tensors": "pt"}
        if videos:
            kwargs["videos"] = videos
            kwargs["do_sample_frames"] = False  # the frames are already the sampled ones
            # Small frames such as (2, 4, 4, 3) are otherwise read as channels-first.
            kwargs["input_data_format"] = "channels_last"
        inputs = self.processor(**kwargs)
        self._count_full_prompts(batch, inputs)
        inputs = inputs.to(self.device)
        for key, value in inputs.items():
            if key.startswith("pixel_values") and value.is_floating_point():
                inputs[key] = value.to(self.dtype)
        return dict(inputs)

    def _count_full_prompts(self, batch: list[_Prompt], inputs: Any) -> None:
        """What the uncached path computes: every prompt in full, every video through the vision tower."""
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        self.stats.prefill_tokens += int(mask.sum())
        self.stats.prefill_pad_tokens += int(mask.numel() - mask.sum())
        for row, prompt in enumerate(batch):
            valid = ids[row][mask[row].bool()].tolist()
            vid = video_identity(prompt.request)
            if vid is None:
                self.stats.prefill_min_tokens += len(valid)
                continue
            self.stats.vision_encodes += 1
            n = prefix_length(valid, self.processor.create_mm_token_type_ids([valid])[0])
            self.stats.note_call(prefix_key(vid, valid[:n]), n, len(valid) - n)

    def _generate_batch(self, batch: list[_Prompt]) -> list[GenerationResult]:
        from transformers import GenerationConfig, LogitsProcessorList

        from videosavi.builders.generate.models.sampling import RowControlProcessor, RowState

        torch = self._torch
        rows = []
        for p in batch:
            r = p.request
            matcher = None
            if r.json_schema is not None and self.cfg.constrained:
                matcher = self._grammar_cache().matcher(r.json_schema)
            rows.append(
                RowState(
                    temperature=r.temperature,
                    top_p=r.top_p,
                    seed=r.seed,
                    max_new_tokens=r.max_new_tokens,
                    matcher=matcher,
                )
            )
        if batch[0].reuse and self._reuse is not None:
            inputs = self._reuse.prepare([p.request for p in batch], [p.text for p in batch])
        else:
            inputs = self._encode(batch)
        banned = self._grammars.control_char_tokens if self._grammars is not None else None
        control = RowControlProcessor(rows, self.eos_ids, json_banned_ids=banned)
        gen_cfg = GenerationConfig(
            do_sample=False,
            num_beams=1,
            # one more step than any row needs: the step where a row at its limit is forced to EOS
            max_new_tokens=max(p.request.max_new_tokens for p in batch) + 1,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, generation_config=gen_cfg, logits_processor=LogitsProcessorList([control])
            )
        new = out[:, inputs["input_ids"].shape[1] :].cpu().tolist()
        results = []
        for row, ids in zip(rows, new, strict=True):
            cut = next((k for k, t in enumerate(ids) if t in control.eos_set), len(ids))
            self.stats.decode_tokens += cut + (1 if cut < len(ids) else 0)
            text = self.tokenizer.decode(ids[:cut], skip_special_tokens=True)
            assert isinstance(text, str)  # one sequence of ids decodes to one string
            if row.finish_reason == "error":
                results.append(GenerationResult(text=text, finish_reason="error", error=row.error))
            elif row.forced_eos or cut == len(ids):
                results.append(GenerationResult(text=text, finish_reason="length"))
            else:
                results.append(GenerationResult(text=text, finish_reason="stop"))
        return results


@dataclass(frozen=True)
class _Prompt:
    """A request with its rendered chat template, and whether it goes through prefix reuse."""

    request: GenerationRequest
    text: str
    reuse: bool

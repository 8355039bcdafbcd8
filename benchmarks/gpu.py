"""Generation at the paper's scale on one GPU, with and without prefix reuse, on a real-size model.

    python benchmarks/gpu.py [--videos 8] [--frames 32] [--size 448] [--batch-size 16] [--json PATH]
    python benchmarks/gpu.py --scale tiny --device cpu --videos 2 --frames 4 --size 56 --budget-scale 0.05  # smoke
    python benchmarks/gpu.py --engines in-process,vllm --vllm /path/to/vllm  # in-process vs vLLM, dummy 7B weights

No weights are downloaded: the model is Qwen2.5-VL-7B's published architecture (28 decoder layers of
width 3584 with 4 key/value heads, a 32-block vision tower of width 1280, vocabulary 152,064) built in
code with random bf16 weights directly on the device. The tokenizer is the tiny Qwen one, whose
special-token ids are wired into the config, and the video processor is Qwen2-VL's, sized so a
448x448 frame pair becomes 256 tokens (32 frames: 4,096 video tokens per call, as in the paper).

Each video gets the pipeline's 19 calls, stage by stage over the whole window (1 question call, then
6 answers, 6 critiques, 6 refinements) with the bundled prompts, the demo's sampling (temperature 0.9,
top-p 0.95) and fixed token budgets. Random weights almost never emit EOS, so every call decodes its
whole budget: the figures are for known lengths, not for a model's habits. The same workload runs
twice through `TransformersBackend`: with prefix reuse (the default) and without (`prefix_cache_mb: 0`).
Printed per mode: pairs/hour (6 pairs per video), prefill and decode tokens/s (model forward time,
CUDA-synchronised, split by whether a forward takes one token per row), peak GPU memory, the share of
wall time outside the model's forward passes, and the backend's counters.

`--engines vllm` (or `in-process,vllm`) runs the same 19 calls per video through a real vLLM and the
`openai` backend, side by side with in-process decoding: the model folder holds the same config and
processor without weights, `savi model serve` starts `vllm serve` on it with `--load-format dummy`
(random weights made by vLLM itself), and the frames travel as one MP4 per video (`video_transport:
video_url`, so vLLM sees the same 2-frame patches as in-process decoding). Printed per engine:
pairs/hour, prompt tokens sent and computed (vLLM's `cached_tokens` tell), the cached share and
requests per video. `--vllm PATH` names the executable (default $VIDEOSAVI_VLLM, else `vllm` on PATH).

Exit status: 0 when it ran; 2, with one line on stderr, when the device asked for is not there
(`--device cuda`, the default, without a CUDA GPU), or vLLM is asked for and not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAIRS_PER_VIDEO = 6
STAGE_BUDGETS = {"question": 128, "answer": 128, "critique": 256, "refine": 128}
TEMPERATURE, TOP_P = 0.9, 0.95

# Qwen2.5-VL-7B-Instruct's config.json (text and vision dimensions; token ids come from our tokenizer).
QWEN25_VL_7B_TEXT = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, max_position_embeddings=128000,
                         rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24],
                                          "rope_theta": 1000000.0})
QWEN25_VL_7B_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu")
# The same layout shrunk, to run this script's code on a CPU.
# Head size 32, as vLLM's CPU attention needs (a smoke run of --engines vllm on a CPU).
TINY_TEXT = dict(QWEN25_VL_7B_TEXT, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=2, num_key_value_heads=1, vocab_size=2048,
                 rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0})
TINY_VISION = dict(QWEN25_VL_7B_VISION, depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
                   out_hidden_size=64, fullatt_block_indexes=[1])
SCALES = {"7b": (QWEN25_VL_7B_TEXT, QWEN25_VL_7B_VISION), "tiny": (TINY_TEXT, TINY_VISION)}


@dataclass
class ModeFigures:
    mode: str
    videos: int
    calls: int
    wall_s: float
    model_s: float
    prefill_s: float
    decode_s: float
    peak_gpu_gb: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def pairs_per_hour(self) -> float:
        return self.videos * PAIRS_PER_VIDEO / self.wall_s * 3600 if self.wall_s else 0.0

    @property
    def prefill_tok_s(self) -> float:
        return self.stats.get("prefill_tokens", 0) / self.prefill_s if self.prefill_s else 0.0

    @property
    def decode_tok_s(self) -> float:
        return self.stats.get("decode_tokens", 0) / self.decode_s if self.decode_s else 0.0

    @property
    def outside_share(self) -> float:
        return 1 - self.model_s / self.wall_s if self.wall_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pairs_per_hour": round(self.pairs_per_hour, 1),
                "prefill_tok_s": round(self.prefill_tok_s, 1), "decode_tok_s": round(self.decode_tok_s, 1),
                "outside_share": round(self.outside_share, 4)}


class ForwardTimer:
    """Wall time inside the model's top-level forward, split into prefill (several tokens per row) and
    decode (one token per row); synchronises CUDA around each call so the time is the GPU's."""

    def __init__(self, model: Any, cuda: bool) -> None:
        import torch

        self.sync = torch.cuda.synchronize if cuda else (lambda: None)
        self.prefill_s = self.decode_s = 0.0
        self._t0 = 0.0
        self._decode = False
        self._handles = [model.register_forward_pre_hook(self._pre, with_kwargs=True),
                         model.register_forward_hook(self._post, with_kwargs=True)]

    def _pre(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        x = kwargs.get("input_ids")
        if x is None:
            x = kwargs.get("inputs_embeds")
        self._decode = x is not None and x.shape[1] == 1
        self.sync()
        self._t0 = time.perf_counter()

    def _post(self, module: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        self.sync()
        dt = time.perf_counter() - self._t0
        if self._decode:
            self.decode_s += dt
        else:
            self.prefill_s += dt

    def reset(self) -> None:
        self.prefill_s = self.decode_s = 0.0

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def build_config_and_processor(scale: str, frame_size: int) -> tuple[Any, Any]:
    """Qwen2.5-VL's config at `scale` and a processor for it (the tiny Qwen tokenizer, frames sized so a
    pair of `frame_size` frames is (frame_size / 28)^2 tokens)."""
    from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

    from videosavi.builders.generate.models.tiny import ensure_tiny_model

    tiny = AutoProcessor.from_pretrained(ensure_tiny_model("tiny-qwen2-vl"))
    tok = tiny.tokenizer
    pixels = frame_size * frame_size
    processor = Qwen2_5_VLProcessor(
        image_processor=tiny.image_processor,
        tokenizer=tok,
        # exactly frame_size x frame_size (a multiple of 28): min = max pixels, no per-frame budget cap
        video_processor=Qwen2VLVideoProcessor(size={"shortest_edge": pixels, "longest_edge": pixels},
                                              cap_pixels_per_frame=False),
        chat_template=tiny.chat_template,
    )
    text, vision = SCALES[scale]
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    config = Qwen2_5_VLConfig(
        text_config=dict(text, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None),
        vision_config=dict(vision), tie_word_embeddings=False, **ids)
    return config, processor


def build_model_and_processor(scale: str, device: str, frame_size: int) -> tuple[Any, Any]:
    """Random-weight Qwen2.5-VL of `scale` created on `device` (bf16 on a GPU), and a processor for it."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    config, processor = build_config_and_processor(scale, frame_size)
    tok = processor.tokenizer
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32  # CPU bf16 kernels are slow
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model.eval(), processor


def workload(videos: int, frames: int, size: int, budget_scale: float = 1.0) -> dict[str, list[Any]]:
    """The 19 calls of each video, by stage, as the pipeline would build them (real prompts)."""
    import numpy as np

    from videosavi.builders.generate.call_keys import video_key
    from videosavi.builders.generate.models.base import GenerationRequest
    from videosavi.builders.generate.prompts import PromptSet
    from videosavi.builders.generate.stages.answer import answer_messages
    from videosavi.builders.generate.stages.critique import critique_messages
    from videosavi.builders.generate.stages.questions import question_messages
    from videosavi.builders.generate.stages.refine import refine_messages
    from videosavi.schemas import Critique, CritiqueIssue

    prompts = PromptSet.load()
    answer = ("The person walks to the table, picks up the red cup with the left hand, drinks from it and then "
              "puts it back next to the plate before leaving the room through the door on the right.")
    critique = Critique(issues=[
        CritiqueIssue(statement="picks up the red cup with the left hand", reason="the right hand takes the cup",
                      evidence="frames 9 to 12 show the right hand", severity="minor",
                      error_type="spatial_relationship"),
        CritiqueIssue(statement="leaves through the door on the right", reason="the person stays in the room",
                      evidence="the last frames still show the person", severity="critical",
                      error_type="factual_inaccuracy")],
        summary="The hand and the ending are wrong.")
    rng = np.random.default_rng(0)
    stages: dict[str, list[Any]] = {s: [] for s in STAGE_BUDGETS}

    def call(stage: str, v: int, slot: int, messages: list[dict], clip: Any) -> Any:
        budget = max(1, round(STAGE_BUDGETS[stage] * budget_scale))
        return GenerationRequest(frames=clip, messages=messages, temperature=TEMPERATURE, top_p=TOP_P,
                                 max_new_tokens=budget, seed=100 * v + 10 * slot + len(stages),
                                 video_key=video_key(f"bench-{v}", list(range(frames))))

    for v in range(videos):
        clip = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
        stages["question"].append(call("question", v, 0, question_messages(prompts, frames, 3, 3), clip))
        for q in range(6):
            question = f"Which hand does the person use to pick up the cup in scene {q + 1}?"
            stages["answer"].append(call("answer", v, q, answer_messages(prompts, question, frames), clip))
            stages["critique"].append(call("critique", v, q, critique_messages(prompts, question, answer, frames),
                                           clip))
            stages["refine"].append(call("refine", v, q, refine_messages(prompts, question, answer, critique, frames),
                                         clip))
    return stages


def run_mode(backend: Any, stages: dict[str, list[Any]], timer: ForwardTimer, mode: str, cuda: bool) -> ModeFigures:
    import torch

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timer.reset()
    t0 = time.perf_counter()
    calls = 0
    for requests in stages.values():  # stage by stage over the window, as VideoPipeline runs them
        results = backend.generate(requests)
        bad = [r.error for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"{mode}: {len(bad)} call(s) failed, first: {bad[0]}")
        calls += len(requests)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    return ModeFigures(mode=mode, videos=len(stages["question"]), calls=calls, wall_s=round(wall, 2),
                       model_s=round(timer.prefill_s + timer.decode_s, 2), prefill_s=round(timer.prefill_s, 2),
                       decode_s=round(timer.decode_s, 2), peak_gpu_gb=round(peak, 2), stats=backend.stats.as_dict())


def table(figs: list[ModeFigures], title: str) -> object:
    from rich.table import Table

    t = Table(title=title)
    for col in ("mode", "pairs/hour", "wall s", "prefill tok/s", "decode tok/s", "peak GPU GB", "outside model",
                "vision enc/video", "prefill/min", "prefill tokens", "decode tokens"):
        t.add_column(col, justify="right")
    for f in figs:
        s = f.stats
        t.add_row(f.mode, f"{f.pairs_per_hour:,.0f}", f"{f.wall_s:.1f}", f"{f.prefill_tok_s:,.0f}",
                  f"{f.decode_tok_s:,.0f}", f"{f.peak_gpu_gb:.1f}", f"{f.outside_share:.1%}",
                  f"{s.get('vision_encodes_per_video', 0):.2f}", f"{s.get('prefill_vs_min', 0):.3f}",
                  f"{s.get('prefill_tokens', 0):,}", f"{s.get('decode_tokens', 0):,}")
    return t


@dataclass
class EngineFigures:
    """One engine's run of the workload, in the units both engines can report."""

    engine: str
    videos: int
    calls: int
    wall_s: float
    prompt_tokens: int  # sent: every call's whole prompt
    computed_tokens: int  # prefilled: sent minus what a prefix cache supplied

    @property
    def pairs_per_hour(self) -> float:
        return self.videos * PAIRS_PER_VIDEO / self.wall_s * 3600 if self.wall_s else 0.0

    @property
    def cached_share(self) -> float:
        return 1 - self.computed_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pairs_per_hour": round(self.pairs_per_hour, 1),
                "cached_share": round(self.cached_share, 4), "requests_per_video": self.calls / max(1, self.videos)}


def engines_table(figs: list[EngineFigures], title: str) -> object:
    from rich.table import Table

    t = Table(title=title)
    for col in ("engine", "pairs/hour", "wall s", "prompt tokens sent", "computed", "cached share", "requests/video"):
        t.add_column(col, justify="right")
    for f in figs:
        t.add_row(f.engine, f"{f.pairs_per_hour:,.0f}", f"{f.wall_s:.1f}", f"{f.prompt_tokens:,}",
                  f"{f.computed_tokens:,}", f"{f.cached_share:.1%}", f"{f.calls / max(1, f.videos):.1f}")
    return t


def run_vllm(args: argparse.Namespace, stages: dict[str, list[Any]], cuda: bool, log: Any) -> EngineFigures:
    """The workload through `savi model serve` + vLLM (dummy weights of the same layout) and the openai backend."""
    import yaml

    from videosavi.builders.generate.models.openai_backend import OpenAIBackend
    from videosavi.builders.generate.models.vllm_serve import find_vllm, stop_server, wait_for_server
    from videosavi.config import load_config, model_config
    from videosavi.hub.serve import free_port

    vllm = find_vllm(args.vllm)
    work = Path(tempfile.mkdtemp(prefix="videosavi-gpu-vllm-"))
    model_dir = work / f"dummy-qwen2.5-vl-{args.scale}"
    config, processor = build_config_and_processor(args.scale, args.size)
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]  # what vLLM loads (else it serves embeddings)
    config.save_pretrained(model_dir)  # no weights: vLLM makes random ones (--load-format dummy)
    processor.save_pretrained(model_dir)
    url = f"http://127.0.0.1:{free_port()}/v1"
    served = {"backend": "openai", "name_or_path": model_dir.name, "base_url": url, "video_transport": "video_url",
              "concurrency": args.concurrency, "batch_size": args.batch_size, "constrained": False,
              "request_timeout_s": 3600.0}
    budgets = {s: {"max_new_tokens": max(1, round(b * args.budget_scale))} for s, b in STAGE_BUDGETS.items()}
    cfg = load_config("demo", {"frames": {"num_frames": args.frames, "resize": [args.size, args.size]},
                               "model": served, "stages": budgets})
    cfg_path = work / "serve.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    cmd = [sys.executable, "-m", "videosavi", "model", "serve", "--config", str(cfg_path), "--model", str(model_dir),
           "--vllm", vllm, "--", "--load-format", "dummy", "--dtype", "bfloat16" if cuda else "float32",
           "--media-io-kwargs", json.dumps({"video": {"num_frames": args.frames}})]
    log_path = work / "vllm.log"
    with open(log_path, "w") as out:
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        if not cuda:  # vLLM's CPU engine otherwise claims 92% of the machine's memory for its cache
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        t0 = time.perf_counter()
        wait_for_server(url, proc, args.start_timeout, log_path)
        log(f"  vLLM serving after {time.perf_counter() - t0:.0f} s (log: {log_path})")
        backend = OpenAIBackend(model_config(**served))
        t0 = time.perf_counter()
        calls = 0
        for requests in stages.values():
            results = backend.generate(requests)
            bad = [r.error for r in results if not r.ok]
            if bad:
                raise RuntimeError(f"vllm: {len(bad)} call(s) failed, first: {bad[0]}")
            calls += len(requests)
        wall = time.perf_counter() - t0
        st = backend.stats
        backend.close()
    finally:
        stop_server(proc)
    return EngineFigures(engine="vllm", videos=len(stages["question"]), calls=calls, wall_s=round(wall, 2),
                         prompt_tokens=st.server_prompt_tokens,
                         computed_tokens=st.server_prompt_tokens - st.server_cached_tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=8, help="videos in the window (19 calls each)")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--size", type=int, default=448, help="frame side in pixels (a multiple of 28)")
    ap.add_argument("--batch-size", type=int, default=16, help="model.batch_size")
    ap.add_argument("--scale", choices=sorted(SCALES), default="7b")
    ap.add_argument("--budget-scale", type=float, default=1.0,
                    help=f"multiply the token budgets {STAGE_BUDGETS} (smaller for a smoke run)")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run at --scale tiny")
    ap.add_argument("--modes", default="reuse,full", help="comma-separated: reuse (prefix reuse), full (none)")
    ap.add_argument("--engines", default="in-process", help="comma-separated: in-process, vllm")
    ap.add_argument("--vllm", default=os.environ.get("VIDEOSAVI_VLLM"), help="the vllm executable (default: "
                    "$VIDEOSAVI_VLLM, else vllm on PATH)")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight to vLLM")
    ap.add_argument("--start-timeout", type=float, default=1800, help="seconds to wait for vLLM to serve")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args()
    if args.size % 28:
        ap.error(f"--size must be a multiple of 28, got {args.size}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := [e for e in engines if e not in ("in-process", "vllm")]:
        ap.error(f"unknown engine(s) {', '.join(unknown)}: use in-process, vllm")

    import torch

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device on this machine; nothing measured (use a GPU, or "
              "--scale tiny --device cpu for a smoke run)", file=sys.stderr)
        return 2

    from rich.console import Console

    from videosavi.builders.generate.models.transformers_backend import TransformersBackend
    from videosavi.builders.generate.models.vllm_serve import find_vllm
    from videosavi.compat import ensure_torchvision_importable
    from videosavi.config import model_config
    from videosavi.errors import ModelError
    from videosavi.schemas import ModelInfo

    if "vllm" in engines:
        try:
            find_vllm(args.vllm)
        except ModelError as exc:
            print(f"benchmarks/gpu.py: {exc}", file=sys.stderr)
            return 2
    ensure_torchvision_importable()
    console = Console(width=160)
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    stages = workload(args.videos, args.frames, args.size, args.budget_scale)
    title = (f"{args.videos} videos x {args.frames} frames of {args.size}x{args.size}, 19 calls each, "
             f"batch {args.batch_size}, on {device_name}")
    engine_figures: list[EngineFigures] = []
    if "vllm" in engines:
        engine_figures.append(run_vllm(args, stages, cuda, console.print))
    if "in-process" not in engines:
        console.print(engines_table(engine_figures, title))
        _write_json(args, device_name, None, [], engine_figures)
        return 0
    t0 = time.perf_counter()
    model, processor = build_model_and_processor(args.scale, args.device, args.size)
    if cuda:
        torch.cuda.synchronize()
    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"Qwen2.5-VL {args.scale} layout, {n_params / 1e9:.2f} B random {model.dtype} parameters on "
                  f"{device_name}, built in {time.perf_counter() - t0:.1f} s")
    timer = ForwardTimer(model, cuda)
    info = ModelInfo(backend="transformers", name_or_path=f"random-qwen2.5-vl-{args.scale}", revision="random",
                     architecture="qwen2_5_vl")
    figures = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        cfg = model_config(backend="transformers", name_or_path=info.name_or_path,
                           dtype=str(model.dtype).split(".")[-1], device=args.device,
                           batch_size=args.batch_size, constrained=False,
                           prefix_cache_mb=0 if mode == "full" else None)
        backend = TransformersBackend.from_loaded(model, processor, cfg, info)
        fig = run_mode(backend, stages, timer, mode, cuda)
        backend.prefix_cache.clear()
        figures.append(fig)
        console.print(f"  {mode}: {fig.wall_s:.1f} s, {fig.pairs_per_hour:,.0f} pairs/hour")
    timer.remove()
    console.print(table(figures, title))
    if engine_figures:
        reuse = next((f for f in figures if f.mode == "reuse"), figures[0])
        s = reuse.stats
        engine_figures.insert(0, EngineFigures(
            engine=f"in-process ({reuse.mode})", videos=reuse.videos, calls=reuse.calls, wall_s=reuse.wall_s,
            prompt_tokens=s.get("prompt_tokens", 0), computed_tokens=s.get("prefill_tokens", 0)))
        console.print(engines_table(engine_figures, title))
    _write_json(args, device_name, n_params, figures, engine_figures)
    return 0


def _write_json(args: argparse.Namespace, device: str, n_params: int | None, figures: list[ModeFigures],
                engines: list[EngineFigures]) -> None:
    if not args.json:
        return
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "device": device,
                                     "parameters": n_params, "modes": [f.to_json() for f in figures],
                                     "engines": [e.to_json() for e in engines]}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

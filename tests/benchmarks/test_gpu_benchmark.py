"""benchmarks/gpu.py: its refusal without a GPU, and its code path on a CPU at a shrunken scale.

The GPU run itself (Qwen2.5-VL-7B's layout, 32 frames of 448x448) needs an H200-class device; here
the same script runs the same layout shrunk to a few thousand parameters, so a broken benchmark is
caught before anyone spends GPU time on it. Only counts are asserted, never times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.build_helpers import subprocess_env

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_it_exits_2_with_one_line() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=subprocess_env(),
                          timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0]


def test_smoke_run_on_cpu_counts_the_work(tmp_path: Path, videosavi_cache: str) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "tiny", "--device", "cpu", "--videos", "2", "--frames", "4",
         "--size", "56", "--batch-size", "8", "--budget-scale", "0.02", "--json", str(out)],
        capture_output=True, text=True, env=subprocess_env(VIDEOSAVI_CACHE=videosavi_cache), timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modes = {m["mode"]: m for m in json.loads(out.read_text())["modes"]}
    reuse, full = modes["reuse"]["stats"], modes["full"]["stats"]
    assert modes["reuse"]["calls"] == modes["full"]["calls"] == 2 * 19
    assert reuse["vision_encodes"] == 2 and reuse["vision_encodes_per_video"] == 1.0
    assert full["vision_encodes"] == 2 * 19 and full["vision_encodes_per_video"] == 19.0
    assert reuse["prefill_vs_min"] == 1.0 < full["prefill_vs_min"]
    assert reuse["prefill_min_tokens"] == full["prefill_min_tokens"]
    assert reuse["decode_tokens"] == full["decode_tokens"] > 0


def test_the_vllm_engine_without_vllm_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--engines", "in-process,vllm", "--scale", "tiny", "--device",
                           "cpu", "--vllm", str(tmp_path / "no-vllm")], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "vLLM is not installed" in lines[0]

"""A real vLLM serves the tiny model; `savi doctor` and a small build run through it (issue 21 item 6).

Run by `make test-vllm` (CI runs it after `make test`): the target builds vLLM's own venv (tools/vllm_env.sh,
cached per machine) and sets VIDEOSAVI_VLLM to its `vllm`; without it this module is skipped, because a
real engine cannot be installed beside our pins. The server is started by `savi model serve` and so runs
vLLM's defaults except the flags that command sets; the build uses the same model, config and seeds as
an in-process build, and must turn every question into a pair as in-process decoding does (but where a
critique names no issue, a valid reply with nothing to refine), all of them valid, none quarantined, with
every call of a video after its first served from vLLM's prefix cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers.build_helpers import subprocess_env, write_small_config
from videosavi.builders.run.runner import BuildOptions, run_build
from videosavi.hub.serve import free_port
from videosavi.run_dir import RunDir
from videosavi.schemas import PreferencePair

VLLM = os.environ.get("VIDEOSAVI_VLLM")
pytestmark = pytest.mark.skipif(not VLLM, reason="needs a real vLLM: run `make test-vllm` (it sets VIDEOSAVI_VLLM)")
if VLLM and not os.access(VLLM, os.X_OK):  # asked for, and absent: a failure, never a skip
    raise RuntimeError(f"VIDEOSAVI_VLLM={VLLM} is not an executable (make test-vllm builds it: tools/vllm_env.sh)")

MODEL = "tiny-qwen2-vl"
VIDEOS = 4
START_TIMEOUT_S = 600
# 8 frames of 128x128 are 144 image tokens for the tiny Qwen2-VL: with the system turn, a video's prefix fills
# one 128-token block (vLLM's CPU default), so a prefix-cache hit is visible on every later call of a video.
# The paper's 3 + 3 questions: a video's 6 critiques (and 6 refinements) share their instructions too.
# Curation off: its filters judge the text, and a random model's text trips them by chance on either side (a
# refinement equal to its 24-token answer). Five tries per structured call (the demo's three leave a random model a
# small chance of three malformed replies in a row, on either side).
SETTINGS = {"frames": {"num_frames": 8, "resize": [128, 128], "workers": 1}, "questions": {"spatial": 3, "temporal": 3},
            "curation": {"enabled": False}, "stages": {"max_attempts": 5}}
# Share of the prompt tokens sent that vLLM took from its cache. Per video (tiny tokenizer, measured): a 1,300-token
# question call (nothing to reuse), 6 answers of ~175 tokens (128 reused: the video), 6 critiques of ~1,280 and 6
# refinements of ~535, whose first reuses the video and the other five the instructions too (~1,150 and ~380):
# about 65%. With the question and answer before the instructions (the layout before issue 21) it was ~17%.
MIN_CACHED_SHARE = 0.5


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vllm-configs")
    port = free_port()
    served = {"backend": "openai", "name_or_path": MODEL, "base_url": f"http://127.0.0.1:{port}/v1",
              "concurrency": 8, "batch_size": 32, "request_timeout_s": 300.0, "max_retries": 2}
    return {"vllm": write_small_config(root / "vllm.yaml", {**SETTINGS, "model": served}),
            "in_process": write_small_config(root / "in-process.yaml", {**SETTINGS, "model": {
                "backend": "tiny", "name_or_path": MODEL, "batch_size": 32}})}


@pytest.fixture(scope="module")
def server(configs: dict[str, Path], videosavi_cache: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`savi model serve` (which execs `vllm serve`) in a session of its own, stopped as a group at the end."""
    from videosavi.builders.generate.models.vllm_serve import stop_server, wait_for_server

    log_path = tmp_path_factory.mktemp("vllm-log") / "serve.log"
    env = subprocess_env(VIDEOSAVI_CACHE=videosavi_cache, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1")
    cmd = [sys.executable, "-m", "videosavi", "model", "serve", "--config", str(configs["vllm"]), "--model", MODEL,
           "--vllm", str(VLLM)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = yaml.safe_load(configs["vllm"].read_text())["model"]["base_url"]
    try:
        start = time.monotonic()
        wait_for_server(base_url, proc, START_TIMEOUT_S, log_path)
        print(f"vLLM serving after {time.monotonic() - start:.0f} s", file=sys.stderr)
        yield base_url
    finally:
        stop_server(proc)



def test_serve_command_names_the_flags(server: str, configs: dict[str, Path]) -> None:
    from videosavi.cli import app

    res = CliRunner().invoke(app, ["model", "serve", "--config", str(configs["vllm"]), "--model", MODEL, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == server
    for flag in ("--served-model-name tiny-qwen2-vl", "--enable-prefix-caching", "--enable-prompt-tokens-details",
                 "--limit-mm-per-prompt '{\"image\":8,\"video\":0}'", "--structured-outputs-config", "--max-model-len"):
        assert flag in res.stderr


def test_doctor_reports_vllm_and_a_compact_grammar(server: str, configs: dict[str, Path], demo_root: Path,
                                                    tmp_path: Path) -> None:
    from videosavi.workflows.doctor import DoctorOptions, passed, run_doctor

    rows = run_doctor(DoctorOptions(config=configs["vllm"], data_root=demo_root, store=tmp_path / "store"))
    by_name = {r.name: r for r in rows}
    for r in rows:
        print(f"{r.name}: {r.status}: {r.detail} {r.fix}", file=sys.stderr)
    assert passed(rows), [r for r in rows if r.failed]
    assert "vllm 0.32" in by_name["server"].detail and "(detected)" in by_name["server"].detail
    assert by_name["grammar"].status == "ok" and "compact, no raw control characters" in by_name["grammar"].detail


def test_a_build_through_vllm_equals_in_process_in_pairs_and_hits_the_prefix_cache(
        server: str, configs: dict[str, Path], demo_root: Path, tmp_path: Path) -> None:
    served = run_build(BuildOptions(config=configs["vllm"], data_root=demo_root, out=tmp_path / "vllm",
                                    limit_videos=VIDEOS))
    local = run_build(BuildOptions(config=configs["in_process"], data_root=demo_root, out=tmp_path / "in-process",
                                   limit_videos=VIDEOS))
    s, c = served.info.counts, local.info.counts
    stats = served.model_stats
    q_served, q_local = (sum(x.quarantined for x in counts.stages.values()) for counts in (s, c))
    print(f"pairs: vLLM {s.pairs}, in-process {c.pairs}; quarantined: vLLM {q_served}, in-process {q_local}; "
          f"cached-token share {stats['server_cached_share']:.3f}; repeat calls cached "
          f"{stats['repeat_video_calls_cached']}/{stats['repeat_video_calls']}", file=sys.stderr)
    assert served.info.stopped is None and served.pending_videos == 0
    assert q_served == 0
    assert s.videos_done == c.videos_done == VIDEOS and s.questions == c.questions == 6 * VIDEOS
    # Every question becomes a pair on both sides, but for a critique that names no issue: a valid reply (about 2%
    # of a random model's critiques, on either side at random) after which there is nothing to refine.
    for counts in (s, c):
        assert counts.pairs + counts.filtered.get("no_issue", 0) == counts.questions, counts.filtered
    rows = RunDir(tmp_path / "vllm").read_pairs_table().to_pylist()
    assert len(rows) == s.pairs
    for row in rows:
        PreferencePair.model_validate(row)
    # every call of a video after its first found the video's prefix in vLLM's cache
    assert stats["repeat_video_calls"] == stats["requests"] - VIDEOS > 0
    assert stats["repeat_video_calls_cached"] == stats["repeat_video_calls"]
    assert stats["server_cached_share"] > MIN_CACHED_SHARE

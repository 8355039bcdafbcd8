"""The peers' objectives at demo scale: two self-training iterations of the bundled demo on the tiny
Qwen2-VL, as the paper does them (DPO, no retrospective context) and with ISR-DPO's retrospective
context plus RRPO, timed step by step.

    .venv/bin/python benchmarks/peers.py [--workdir DIR] [--steps 2]

Each variant runs `savi loop` (training/loop.py): build iter1 -> publish -> train -> build iter2 (with
the trained model; the retrospective variant also with iter1's run directory as its previous
context) -> publish -> train. Prints seconds per step and the final training losses; the demo's own
budget is about a minute per iteration on a laptop CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Retrospective demo: the demo config, with the describe stage as short as the demo's other stages.
RETROSPECTIVE = {"retrospective": True,
                 "stages": {"describe": {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 64}}}


def _timed(fn: Any, times: dict[str, float], name: str) -> Any:
    """`fn` recording its seconds under "NAME iterN" (its first argument is the iteration or the run dir)."""
    def wrapped(*args: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args)
        which = f"iter{args[0]}" if isinstance(args[0], int) else Path(args[0]).name
        times[f"{name} {which}"] = time.perf_counter() - t
        return out
    return wrapped


def run_variant(name: str, workdir: Path, data_root: Path, config: Path, loss: str, steps: int) -> dict[str, Any]:
    from videosavi.training.args import TrainArgs
    from videosavi.training.video_roots import roots_from_config
    from videosavi.workflows.loop import default_build, default_publish, default_train, run_loop

    store = workdir / "store"
    template = TrainArgs(dataset=f"bench/{name}", revision="", model="tiny-qwen2-vl", output=workdir,
                         video_roots=roots_from_config(str(config), data_root), store=store, max_steps=steps,
                         per_device_batch_size=2, grad_accum=1, lr=1e-3, warmup_ratio=0.0, loss=loss,
                         dataloader_workers=0)
    times: dict[str, float] = {}
    losses: dict[int, list[float]] = {}
    train = default_train(template)

    def train_and_record(iteration: int, revision: str, model: str, output: Path) -> Path:
        merged = train(iteration, revision, model, output)
        record = json.loads((output / "train.json").read_text())
        losses[iteration] = [round(h["loss"], 5) for h in record["history"]]
        return merged

    t0 = time.perf_counter()
    run_loop(2, "tiny-qwen2-vl", workdir / "loop",
             build=_timed(default_build(config, data_root), times, "build"),
             publish=_timed(default_publish(f"bench/{name}", store=store), times, "publish"),
             train=_timed(train_and_record, times, "train"))
    times["total"] = time.perf_counter() - t0
    return {"times": times, "losses": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()

    import yaml

    from videosavi.builders.sources.demo_data import write_demo_data
    from videosavi.config import load_config

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="videosavi-peers-"))
    data_root = workdir / "data"
    write_demo_data(data_root)
    configs = {}
    for name, over in (("paper", {}), ("retrospective", RETROSPECTIVE)):
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(load_config("demo", over).model_dump(mode="json"), sort_keys=False))
        configs[name] = path
    results = {
        "paper (DPO)": run_variant("paper", workdir / "paper", data_root, configs["paper"], "sigmoid", args.steps),
        "retrospective + RRPO": run_variant("retro", workdir / "retro", data_root, configs["retrospective"], "rrpo",
                                            args.steps),
    }
    names = list(next(iter(results.values()))["times"])
    print(f"{'step (seconds)':<22}" + "".join(f"{label:>24}" for label in results))
    for step in names:
        print(f"{step:<22}" + "".join(f"{r['times'].get(step, float('nan')):>24.1f}" for r in results.values()))
    for label, r in results.items():
        print(f"{label}: training losses per iteration {r['losses']}")
    print(f"(work directory: {workdir})")


if __name__ == "__main__":
    main()

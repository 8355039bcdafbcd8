"""`train_dpo`: one DPO + LoRA run on a named revision, from rows to adapter, merged model and card.

Order is chosen so that bad input costs nothing: the revision is resolved and every video checked
(and the missing share enforced) before the model is loaded, let alone trained. Outputs:

```
OUTPUT/adapter/      LoRA adapter (PEFT) + processor files + README.md (model card, library peft)
OUTPUT/merged/       adapter folded into the base: a plain checkpoint + processor + README.md
OUTPUT/train.json    args, dataset repo/revision/sha, data counts, metrics history (written last:
                     its presence means the run finished)
OUTPUT/checkpoints/  only with save_steps (for resume)
```

On CPU bf16 and gradient checkpointing are off (slow or unsupported there); on a GPU bf16 is on
where supported and gradient checkpointing is on (a 32-frame video prompt is thousands of tokens).
Under `accelerate launch` every process prepares the same rows; only the main process writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videosavi._faults import failpoint
from videosavi.errors import ConfigError
from videosavi.hub_location import HubLocation
from videosavi.out_guard import check_apart, check_folder, claim_folder
from videosavi.progress import progress_bars_enabled, status_console
from videosavi.training.args import TrainArgs, TrainResult
from videosavi.training.lora_targets import LoraTargets, check_spec, find_lora_targets
from videosavi.training.losses import RRPO, TRL_LOSSES, check_loss, loss_title
from videosavi.training.metrics import all_finite, final_metrics, metric_names, metrics_history
from videosavi.version import __version__

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"
CHECKPOINTS_DIR = "checkpoints"
TRAIN_JSON = "train.json"


COMMAND = "savi train"
# What a training run writes at OUTPUT's top level; it replaces these (and only these) when it starts.
OUT_ENTRIES = (ADAPTER_DIR, MERGED_DIR, CHECKPOINTS_DIR, "plots", TRAIN_JSON, TRAIN_JSON + ".tmp")


def check_output(output: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix a new run into a finished one's folder (its card would describe the wrong data), and
    a folder holding anything a training run did not write (videosavi/out_guard.py): a run replaces its
    own earlier adapter/ and merged/, never a folder of the same name that someone else put there."""
    if (output / TRAIN_JSON).exists() and not (resume or overwrite):
        raise ConfigError(f"{output} already holds a finished training run ({TRAIN_JSON}); use another --out, "
                          "or --overwrite to replace it")
    check_folder(output, COMMAND, owned=OUT_ENTRIES, replacing=True, flag="--overwrite", legacy=TRAIN_JSON)


def check_output_apart(args: TrainArgs, model_source: str) -> None:
    """OUTPUT must not be, hold or lie in what training reads: the store, a video root, a local model."""
    inputs: dict[str, str | Path | None] = {"store": args.store}
    inputs.update({f"video root of {s}": p for s, p in (args.video_roots or {}).items()})
    if Path(model_source).is_dir():
        inputs["model folder"] = model_source
    check_apart(args.output, inputs)


def check_args(args: TrainArgs) -> None:
    """Numbers that would fail deep inside transformers are refused here with the option's name."""
    checks = [
        (args.epochs > 0, "--epochs must be > 0"),
        (args.max_steps is None or args.max_steps > 0, "--max-steps must be > 0"),
        (args.beta > 0, "--beta must be > 0"),
        (args.lora_r > 0 and args.lora_alpha > 0, "--lora-r and --lora-alpha must be > 0"),
        (0.0 <= args.lora_dropout < 1.0, "--lora-dropout must lie in [0, 1)"),
        (args.lr > 0, "--lr must be > 0"),
        (0.0 <= args.warmup_ratio < 1.0, "--warmup-ratio must lie in [0, 1)"),
        (args.per_device_batch_size > 0 and args.grad_accum > 0,
         "--per-device-batch-size and --grad-accum must be > 0"),
        (args.max_pairs is None or args.max_pairs > 0, "--max-pairs must be > 0"),
        (0.0 < args.fraction <= 1.0, "--fraction must lie in (0, 1]"),
        (args.question_type in ("both", "spatial", "temporal"), "--question-type must be both, spatial or temporal"),
        (args.rrpo_alpha >= 0, "--alpha must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    HubLocation(store=args.store, endpoint=args.endpoint)  # one place to read the revision from
    check_loss(args.loss, label_smoothing=args.label_smoothing)
    check_spec(args.lora_targets)


def pick_precision(args: TrainArgs) -> tuple[bool, bool, bool]:
    """(use_cpu, bf16, gradient_checkpointing) from the request and the machine."""
    import torch

    cuda = torch.cuda.is_available()
    if args.device == "cuda" and not cuda:
        raise ConfigError("--device cuda asked, but torch sees no GPU")
    use_cpu = args.device == "cpu" or not cuda
    bf16 = args.bf16 if args.bf16 is not None else (not use_cpu and torch.cuda.is_bf16_supported())
    if bf16 and use_cpu:
        raise ConfigError("bf16 training needs a GPU here; drop --bf16 on CPU")
    checkpointing = args.gradient_checkpointing if args.gradient_checkpointing is not None else not use_cpu
    return use_cpu, bool(bf16), bool(checkpointing)


def _dpo_config(args: TrainArgs, *, use_cpu: bool, bf16: bool, checkpointing: bool) -> Any:
    from trl import DPOConfig

    save = args.save_steps is not None
    return DPOConfig(
        output_dir=str(args.output / CHECKPOINTS_DIR),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1,
        per_device_train_batch_size=args.per_device_batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        lr_scheduler_type=args.lr_scheduler,
        warmup_steps=args.warmup_ratio,  # < 1: a share of the total steps
        beta=args.beta,
        # RRPO replaces the loss (RRPOTrainer); TRL still wants one of its own names here
        loss_type=[args.loss if args.loss in TRL_LOSSES else "sigmoid"],
        label_smoothing=args.label_smoothing,
        seed=args.seed,
        logging_steps=args.logging_steps,
        report_to=[],
        save_strategy="steps" if save else "no",
        save_steps=args.save_steps or 500,
        bf16=bf16,
        gradient_checkpointing=checkpointing,
        use_cpu=use_cpu,
        max_length=None,  # never cut a prompt: its video tokens would lose their frames
        remove_unused_columns=False,  # the collator needs video_file / frame_indices
        dataloader_num_workers=args.dataloader_workers,
        disable_tqdm=not progress_bars_enabled(),
    )


def _resume_from(args: TrainArgs) -> str | None:
    if not args.resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    folder = args.output / CHECKPOINTS_DIR
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


@dataclass
class _Run:
    """State handed from one phase of `train_dpo` to the next."""

    args: TrainArgs
    console: Console
    rev: Any = None  # TrainingRevision
    data: Any = None  # TrainingData
    resize: tuple[int, int] | None = None
    precision: dict[str, bool] = field(default_factory=dict)
    source: str = ""
    mode: str = "video"
    lora: LoraTargets | None = None
    timings: dict[str, float] = field(default_factory=dict)


def train_dpo(args: TrainArgs, *, before_merge: Callable[[Any], None] | None = None) -> TrainResult:
    """Train, save adapter + merged model + cards + train.json; see the module docstring.

    `before_merge(model)` sees the trained PEFT model before merging folds it in place (tests compare
    its logits with the saved artefacts; callers may evaluate it). A full disk (an OSError, or a
    library's own error saying so, as safetensors' SafetensorError does) is the build's one line.
    """
    from videosavi.builders.run.disk_full import disk_full_error

    try:
        return _train_dpo(args, before_merge)
    except Exception as exc:
        full = disk_full_error(exc, Path(args.output), kept="Checkpoints saved so far are kept (--resume goes on "
                               "from the last one)")
        if full is None:
            raise
        raise full from exc


def _train_dpo(args: TrainArgs, before_merge: Callable[[Any], None] | None) -> TrainResult:
    from videosavi.compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # before trl/transformers: their video processors import torchvision
    check_args(args)
    check_output(Path(args.output), resume=args.resume, overwrite=args.overwrite)
    run = _Run(args=args, console=status_console())
    t0 = time.perf_counter()
    use_cpu, bf16, checkpointing = pick_precision(args)
    run.precision = {"use_cpu": use_cpu, "bf16": bf16, "gradient_checkpointing": checkpointing}
    _check_lora_targets(run)
    check_output_apart(args, run.source)
    _prepare_data(run)
    run.timings["data_s"] = time.perf_counter() - t0
    claim_folder(args.output, COMMAND, OUT_ENTRIES)
    trainer, processor = _make_trainer(run)
    t1 = time.perf_counter()
    trainer.train(resume_from_checkpoint=_resume_from(args))
    run.timings["train_s"] = time.perf_counter() - t1
    result = _save(run, trainer, processor, before_merge)
    run.timings["total_s"] = time.perf_counter() - t0
    if trainer.is_world_process_zero():
        _write_train_json(run, result)
        run.console.print(f"adapter -> {result.adapter_dir}"
                          + (f", merged model -> {result.merged_dir}" if result.merged_dir else ""))
    return result


def _check_lora_targets(run: _Run) -> None:
    """Find the LoRA targets on the model's skeleton (no weights) before any video is checked, so a
    regex that matches nothing costs seconds, not the data checks."""
    from videosavi.builders.generate.models.hub_model import require_model_source
    from videosavi.training.model_io import model_skeleton, resolve_model_source

    args = run.args
    run.source = resolve_model_source(args.model)
    require_model_source(run.source, args.model_revision)  # seconds, not minutes of retries, when offline
    skeleton = model_skeleton(run.source, revision=args.model_revision)
    if skeleton is not None:
        run.lora = find_lora_targets(skeleton, args.lora_targets)
        run.console.print(f"LoRA targets: {run.lora.summary()}")


def _prepare_data(run: _Run) -> None:
    """Resolve the revision and check every video: all before a model is loaded."""
    from videosavi.training.data import prepare_training_data
    from videosavi.training.revision import open_revision

    args, console = run.args, run.console
    with console.status(f"resolving {args.dataset}@{args.revision}"):
        run.rev = open_revision(args.dataset, args.revision, store=args.store, endpoint=args.endpoint,
                                cache_dir=args.cache_dir)
    console.print(f"{args.dataset}@{args.revision} -> commit {run.rev.sha[:12]}, {len(run.rev.dataset)} pairs")
    run.resize = args.resize or run.rev.resize
    run.data = prepare_training_data(
        run.rev.dataset, args.video_roots, max_missing_share=args.max_missing_share,
        allow_sha_mismatch=args.allow_sha_mismatch, verify_decode=args.verify_decode, resize=run.resize,
        max_pairs=args.max_pairs, phrases=args.loss == RRPO,
        follow_symlinks=args.follow_symlinks, question_type=args.question_type, fraction=args.fraction,
        seed=args.seed,
    )
    sel = run.data.selection
    if sel is not None and sel.rows_selected != sel.rows_in_revision:
        console.print(f"selected {sel.rows_selected} of {sel.rows_in_revision} pairs (question type "
                      f"{sel.question_type}, fraction {sel.fraction:g}, seed {sel.seed})")
    c = run.data.counts
    console.print(f"pairs: {c.kept_rows} of {c.total_rows} usable ({c.kept_videos} of {c.total_videos} videos)"
                  + (f"; skipped: {c.skipped_rows}" if c.skipped_rows else ""))


def _make_trainer(run: _Run) -> tuple[Any, Any]:
    """Load the policy, build the collator (checking the batches it must form) and the DPO trainer."""
    import torch
    from transformers import set_seed
    from trl import DPOTrainer

    from videosavi.training.collator import VideoDPOCollator, check_batchable, pick_frames_mode
    from videosavi.training.model_io import load_policy, lora_config

    args = run.args
    rrpo = args.loss == RRPO
    dtype = torch.bfloat16 if run.precision["bf16"] else torch.float32
    with run.console.status(f"loading {args.model}"):
        model, processor = load_policy(run.source, revision=args.model_revision, dtype=dtype)
    run.lora = find_lora_targets(model, args.lora_targets)  # the loaded model is what PEFT wraps
    run.mode = pick_frames_mode(processor, args.frames_as)
    collator = VideoDPOCollator(processor, mode=run.mode, resize=run.resize, answer_template=run.rev.answer_template,
                                phrase_masks=rrpo)
    check_batchable(collator, run.data.rows, args.per_device_batch_size)
    set_seed(args.seed)  # LoRA's random init happens inside DPOTrainer, before the Trainer seeds
    extra: dict[str, Any] = {}
    trainer_class: Any = DPOTrainer
    if rrpo:
        from videosavi.training.rrpo_trainer import RRPOTrainer

        trainer_class, extra = RRPOTrainer, {"rrpo_alpha": args.rrpo_alpha}
    trainer = trainer_class(
        model=model,
        args=_dpo_config(args, use_cpu=run.precision["use_cpu"], bf16=run.precision["bf16"],
                         checkpointing=run.precision["gradient_checkpointing"]),
        train_dataset=run.data.to_dataset(),
        processing_class=processor,
        peft_config=lora_config(args.lora_r, args.lora_alpha, args.lora_dropout, list(run.lora.names)),
        data_collator=collator,
        **extra,
    )
    return trainer, processor


def _save(run: _Run, trainer: Any, processor: Any, before_merge: Callable[[Any], None] | None) -> TrainResult:
    """Adapter, then (main process only) merged model and cards."""
    from videosavi.training.model_io import save_merged

    args, output = run.args, Path(run.args.output)
    history = metrics_history(trainer.state.log_history)
    if not all_finite(history):
        run.console.print("[yellow]warning: some logged training metrics are not finite[/yellow]")
    result = TrainResult(output=output, adapter_dir=output / ADAPTER_DIR,
                         merged_dir=output / MERGED_DIR if args.merge else None, train_json=output / TRAIN_JSON,
                         dataset_sha=run.rev.sha, steps=trainer.state.global_step, counts=run.data.counts,
                         final_metrics=final_metrics(history), history=history, lora_targets=_lora(run).summary())
    main = trainer.is_world_process_zero()
    if main:
        _clear_previous(output)
    failpoint("train_save")
    trainer.save_model(str(result.adapter_dir))
    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    if before_merge is not None:
        before_merge(peft_model)
    if not main:
        return result
    processor.save_pretrained(str(result.adapter_dir))
    if result.merged_dir is not None:
        with run.console.status("merging the adapter into the base model"):
            save_merged(peft_model, processor, result.merged_dir)
    _write_cards(run, result)
    return result


def _clear_previous(output: Path) -> None:
    """Files of an earlier (overwritten or crashed) run must not survive beside the new ones."""
    import shutil

    (output / TRAIN_JSON).unlink(missing_ok=True)
    for name in (ADAPTER_DIR, MERGED_DIR):
        shutil.rmtree(output / name, ignore_errors=True)
    with contextlib.suppress(OSError):  # an empty checkpoints/ (none were asked for) goes too
        (output / CHECKPOINTS_DIR).rmdir()


def objective_record(args: TrainArgs, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The objective as train.json and the card state it: loss, its own knobs, and for RRPO how many
    pairs had no differing phrase (they train on the whole-response DPO margin, phrase_masks.py)."""
    record: dict[str, Any] = {"loss": args.loss, "title": loss_title(args.loss), "beta": args.beta}
    if args.label_smoothing:
        record["label_smoothing"] = args.label_smoothing
    if args.loss == RRPO:
        record["alpha"] = args.rrpo_alpha
        record["pairs_without_phrases"] = sum(1 for r in rows if not r.get("diff_spans"))
    return record


def _hyperparameters(args: TrainArgs, mode: str, lora: LoraTargets, objective: dict[str, Any]) -> dict[str, Any]:
    knobs = {k: v for k, v in objective.items() if k in ("alpha", "label_smoothing", "pairs_without_phrases")}
    return {
        "method": f"{objective['title']} + LoRA on {lora.describe()}",
        "loss": args.loss,
        **{f"rrpo_{k}" if k == "alpha" else k: v for k, v in knobs.items()},
        "lora_targets": lora.summary(),
        "beta": args.beta, "lora_r": args.lora_r, "lora_alpha": args.lora_alpha, "lora_dropout": args.lora_dropout,
        "learning_rate": args.lr, "lr_scheduler": args.lr_scheduler, "warmup_ratio": args.warmup_ratio,
        "epochs": args.epochs, "max_steps": args.max_steps, "per_device_batch_size": args.per_device_batch_size,
        "gradient_accumulation": args.grad_accum, "seed": args.seed, "frames_as": mode,
        **({"question_type": args.question_type} if args.question_type != "both" else {}),
        **({"fraction": args.fraction} if args.fraction < 1.0 else {}),
    }


def _write_cards(run: _Run, result: TrainResult) -> None:
    from videosavi.cards.model_card import ModelCardInputs, render_model_card

    args, rev = run.args, run.rev
    iteration = rev.build_info.get("iteration")
    hyperparameters = _hyperparameters(args, run.mode, _lora(run), objective_record(args, run.data.rows))
    inputs = ModelCardInputs(
        base_model=args.model, base_model_revision=_base_revision(run), dataset_repo=args.dataset,
        dataset_revision=args.revision, dataset_sha=rev.sha, hyperparameters=hyperparameters,
        counts=result.counts.to_dict(), steps=result.steps, final_metrics=result.final_metrics,
        metric_names=metric_names(args.loss == RRPO), history=result.history, loss=args.loss,
        iteration=int(iteration) if iteration else None, frames_mode=run.mode, max_pairs=args.max_pairs,
        license=(rev.build_info.get("config") or {}).get("license"), plots=_write_plots(result),
    )
    render_model_card(inputs, "adapter").save(result.adapter_dir / "README.md")
    if result.merged_dir is not None:
        render_model_card(inputs, "merged").save(result.merged_dir / "README.md")


def _lora(run: _Run) -> LoraTargets:
    if run.lora is None:  # pragma: no cover - set by _make_trainer before any output is written
        raise RuntimeError("LoRA targets were never resolved")
    return run.lora


def _write_plots(result: TrainResult) -> dict[str, str]:
    """The paper's DPO-dynamics figure (A.4) in OUTPUT/plots/ and beside each card; {title: path}."""
    from videosavi.cards.training_plots import render_training_plots

    cards = [result.adapter_dir, *([result.merged_dir] if result.merged_dir is not None else [])]
    return render_training_plots(result.history, result.output, cards)


def _base_revision(run: _Run) -> str:
    from videosavi.training.model_io import model_revision_of

    return model_revision_of(run.source, run.args.model_revision)


def _write_train_json(run: _Run, result: TrainResult) -> None:
    """The run's record, written last and atomically: its presence means the run finished."""
    import peft
    import torch
    import transformers
    import trl

    args, rev = run.args, run.rev
    record = {
        "videosavi_version": __version__,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "args": args.to_dict(),
        "dataset": {"repo": args.dataset, "revision": args.revision, "sha": rev.sha,
                    "iteration": rev.build_info.get("iteration"), "generated_by": rev.base_model},
        "base_model": {"name_or_path": args.model, "revision": _base_revision(run)},
        "frames": {"mode": run.mode, "resize": list(run.resize) if run.resize else None},
        "objective": objective_record(args, run.data.rows),
        "lora": _lora(run).to_dict(),
        "precision": run.precision,
        "counts": result.counts.to_dict(),
        "selection": run.data.selection.to_dict() if run.data.selection is not None else None,
        "steps": result.steps,
        "final_metrics": result.final_metrics,
        "history": result.history,
        "outputs": {"adapter": ADAPTER_DIR, "merged": MERGED_DIR if result.merged_dir else None},
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "peft": peft.__version__},
    }
    result.train_json.parent.mkdir(parents=True, exist_ok=True)
    tmp = result.train_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(result.train_json)

"""`savi train`: DPO + LoRA on a named revision; `savi loop`: build -> publish -> train, N iterations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from videosavi.commands._common import friendly_errors, progress_switch

FRAMES_AS = ("auto", "video", "images")
DEVICES = ("auto", "cpu", "cuda")
LOSS_HELP = ("Preference objective: sigmoid (plain DPO, the paper's), any other loss type of TRL's DPOTrainer "
             "(hinge, ipo, robust, exo_pair, nca_pair, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, "
             "discopop, sft, sigmoid_norm), or rrpo (phrase-level margin on the pairs' differing phrases + token-wise "
             "KL; docs/training.md).")
ALPHA_HELP = "RRPO's KL weight (with --loss rrpo; default 0.01, the RRPO authors' setting)."
SMOOTHING_HELP = "TRL's label smoothing, read by the robust, exo_pair and aot losses."
LORA_TARGETS_HELP = ("all-linear (every linear layer of the language model: the paper's ms-swift setting), "
                     "attention (its q/k/v/o only), or a regex matched against whole module names.")


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)
    return value


def _resize(value: Optional[str]) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        h, w = (int(x) for x in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HEIGHTxWIDTH, e.g. 448x448, got {value!r}", param_hint="--resize") from None
    return h, w


@friendly_errors
def train(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Published dataset repo, org/name."),
    revision: str = typer.Option(..., "--revision", "-r", help="Tag, branch or commit sha (e.g. iter1)."),
    model: str = typer.Option(..., "--model", "-m", help="Model to train: tiny-qwen2-vl, a hub id or a local folder."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for adapter/, merged/ and train.json."),
    video_root: list[str] = typer.Option(
        [], "--video-root", help="SOURCE=DIR, once per source in the revision (e.g. star=/data/charades)."
    ),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Build config naming each source's root."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Root the config's source paths are under."),
    store: Optional[Path] = typer.Option(None, "--store", help="Read the revision from this local git store."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="Hub API endpoint (e.g. a `savi hub serve` URL)."),
    model_revision: Optional[str] = typer.Option(None, "--model-revision", help="Hub revision of --model."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the pairs (paper: 1)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    beta: float = typer.Option(0.1, "--beta", help="DPO beta (paper: 0.1)."),
    loss: str = typer.Option("sigmoid", "--loss", help=LOSS_HELP),
    alpha: Optional[float] = typer.Option(None, "--alpha", help=ALPHA_HELP),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help=SMOOTHING_HELP),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank (paper: 8)."),
    lora_alpha: int = typer.Option(8, "--lora-alpha", help="LoRA alpha (paper: 8)."),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout", help="LoRA dropout."),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", help=LORA_TARGETS_HELP),
    lr: float = typer.Option(1e-4, "--lr", help="Peak learning rate (cosine decay)."),
    warmup_ratio: float = typer.Option(0.05, "--warmup-ratio", help="Share of steps spent warming up."),
    batch_size: int = typer.Option(1, "--batch-size", help="Pairs per device per forward pass."),
    grad_accum: int = typer.Option(8, "--grad-accum", help="Gradient accumulation steps."),
    seed: int = typer.Option(42, "--seed", help="Seed of LoRA init, shuffling and dropout."),
    max_missing_share: float = typer.Option(
        0.05, "--max-missing-share", help="Stop before training if more than this share of pairs lack a usable video."
    ),
    allow_sha_mismatch: bool = typer.Option(
        False, "--allow-sha-mismatch", help="Use videos whose sha256 differs from the row's (they are trial-decoded)."
    ),
    verify_decode: bool = typer.Option(False, "--verify-decode", help="Trial-decode every video before training."),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="Use only the first N pairs (smoke runs)."),
    frames_as: str = typer.Option("auto", "--frames-as", help="auto, video, or images (frames as separate images)."),
    resize: Optional[str] = typer.Option(None, "--resize", help="HEIGHTxWIDTH; default: the build's setting."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="Default: on for a GPU that has it."),
    gradient_checkpointing: Optional[bool] = typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Default: on for GPU, off for CPU."
    ),
    workers: int = typer.Option(2, "--workers", help="Data-loader worker processes (they decode the frames)."),
    logging_steps: int = typer.Option(1, "--logging-steps", help="Log metrics every N steps."),
    save_steps: Optional[int] = typer.Option(None, "--save-steps", help="Checkpoint every N steps (for --resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in OUTPUT/checkpoints."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished run in --output."),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="Also write the merged model."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """DPO + LoRA on a published revision: writes OUTPUT/adapter, OUTPUT/merged (+ model card), train.json."""
    from videosavi.training.args import TrainArgs
    from videosavi.training.train import train_dpo
    from videosavi.training.video_roots import resolve_roots, symlink_sources

    progress_switch(progress)
    objective = _objective(loss, alpha, label_smoothing)
    roots = resolve_roots(video_root, config, data_root)
    args = TrainArgs(
        follow_symlinks=symlink_sources(config),
        dataset=dataset, revision=revision, model=model, output=output, video_roots=roots, store=store,
        endpoint=endpoint, model_revision=model_revision, epochs=epochs, max_steps=max_steps, beta=beta, **objective,
        lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=lora_targets, lr=lr,
        warmup_ratio=warmup_ratio,
        batch_size=batch_size, grad_accum=grad_accum, seed=seed, max_missing_share=max_missing_share,
        allow_sha_mismatch=allow_sha_mismatch, verify_decode=verify_decode, max_pairs=max_pairs,
        frames_as=_choice(frames_as, FRAMES_AS, "--frames-as"),  # type: ignore[arg-type]  # a FRAMES_AS value
        resize=_resize(resize),
        device=_choice(device, DEVICES, "--device"),  # type: ignore[arg-type]  # a DEVICES value (_choice checks)
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing, dataloader_workers=workers, logging_steps=logging_steps,
        save_steps=save_steps, resume=resume, overwrite=overwrite, merge=merge,
    )
    result = train_dpo(args)
    _print_result(result)


def _objective(loss: str, alpha: Optional[float], label_smoothing: float) -> dict[str, Any]:
    """TrainArgs fields of the objective, checked before anything is loaded."""
    from videosavi.training.losses import RRPO_DEFAULT_ALPHA, check_loss

    check_loss(loss, label_smoothing=label_smoothing, alpha=alpha)
    return {"loss": loss, "rrpo_alpha": RRPO_DEFAULT_ALPHA if alpha is None else alpha,
            "label_smoothing": label_smoothing}


def _print_result(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trained {result.steps} steps on {result.dataset_sha[:12]}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    c = result.counts
    table.add_row("pairs", f"{c.kept_rows} used of {c.total_rows}" + (f" (skipped: {c.skipped_rows})" if c.skipped_rows
                                                                       else ""))
    table.add_row("LoRA", result.lora_targets)
    for name, value in result.final_metrics.items():
        table.add_row(name, f"{value:.4f}")
    table.add_row("adapter", str(result.adapter_dir))
    if result.merged_dir is not None:
        table.add_row("merged model", str(result.merged_dir))
    table.add_row("record", str(result.train_json))
    Console().print(table)


@friendly_errors
def loop(
    iterations: int = typer.Option(4, "--iterations", "-n", min=1, help="Self-training iterations (paper: 4)."),
    repo: str = typer.Option(..., "--repo", help="Dataset repo each iteration is published to (tag iterN)."),
    model: str = typer.Option(..., "--model", "-m", help="Model of iteration 1 (tiny-qwen2-vl, hub id, folder)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Build config (default: the bundled demo)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Root of the config's source paths."),
    workdir: Path = typer.Option(Path("runs/loop"), "--workdir", help="iterN/ run dirs and iterN-model/ outputs."),
    start: int = typer.Option(1, "--start", min=1, help="First iteration to run (earlier ones must be done)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Local store (default $VIDEOSAVI_STORE or the cache)."),
    hub: bool = typer.Option(False, "--hub", help="Publish to and train from the Hugging Face Hub."),
    limit_videos: Optional[int] = typer.Option(None, "--limit-videos", min=1, help="Build from the first K videos."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over each iteration's pairs."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps per iteration."),
    beta: float = typer.Option(0.1, "--beta"),
    loss: str = typer.Option("sigmoid", "--loss", help=LOSS_HELP),
    alpha: Optional[float] = typer.Option(None, "--alpha", help=ALPHA_HELP),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help=SMOOTHING_HELP),
    lora_r: int = typer.Option(8, "--lora-r"),
    lora_alpha: int = typer.Option(8, "--lora-alpha"),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", help=LORA_TARGETS_HELP),
    lr: float = typer.Option(1e-4, "--lr"),
    batch_size: int = typer.Option(1, "--batch-size"),
    grad_accum: int = typer.Option(8, "--grad-accum"),
    max_missing_share: float = typer.Option(0.05, "--max-missing-share"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Iterate: build with the current model -> publish iterN -> train -> build N+1 with the trained model."""
    from videosavi.errors import ConfigError
    from videosavi.paths import default_store
    from videosavi.training.args import TrainArgs
    from videosavi.training.lora_targets import check_spec
    from videosavi.training.video_roots import roots_from_config, symlink_sources
    from videosavi.workflows.loop import default_build, default_publish, default_train, run_loop

    progress_switch(progress)
    if hub and store is not None:
        raise ConfigError("--store and --hub exclude each other")
    check_spec(lora_targets)  # a bad regex must not wait for the first build to finish
    objective = _objective(loss, alpha, label_smoothing)  # nor a bad objective
    read_store = None if hub else (store or default_store())
    roots = roots_from_config(config or "demo", data_root)
    template = TrainArgs(
        follow_symlinks=symlink_sources(config or "demo"),
        dataset=repo, revision="", model=model, output=workdir, video_roots=roots,
        store=read_store, epochs=epochs, max_steps=max_steps, beta=beta, **objective, lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_targets=lora_targets, lr=lr,
        batch_size=batch_size, grad_accum=grad_accum, max_missing_share=max_missing_share,
    )

    def report(step: Any) -> None:
        state = "already done" if step.skipped else f"published {step.tag} ({step.commit_sha[:12]})"
        typer.echo(f"iteration {step.iteration}: {state}; trained model -> {step.trained_model}")

    run_loop(iterations, model, workdir, start=start, on_step=report,
             build=default_build(config, data_root, limit_videos=limit_videos),
             publish=default_publish(repo, hub=hub, store=store),
             train=default_train(template))


def register(app: typer.Typer) -> None:
    """Add `savi train` and `savi loop` to the app."""
    app.command("train")(train)
    app.command("loop")(loop)

"""`savi model convert`: turn an original InternVL2.5/3 checkpoint into transformers' native layout, so the
paper's backbone runs in the in-process backend and `savi train` without remote code. `savi model serve`:
start vLLM with the flags a build needs, for the `openai` backend."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from videosavi.commands._common import friendly_errors
from videosavi.commands.options import (
    Config,
    ConvertOut,
    ModelRevision,
    ServeModel,
    SourceModel,
    VocabCommand,
    announce_config,
)

model_app = typer.Typer(name="model", help="Prepare model checkpoints for videosavi.", no_args_is_help=True)


@model_app.command("convert", cls=VocabCommand)
@friendly_errors
def convert(
    model: SourceModel,
    out: ConvertOut,
    model_revision: ModelRevision = None,
    force: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an earlier conversion at --out, once the new one is complete.")] = False,
    max_shard_size: Annotated[str, typer.Option(
        "--max-shard-size", help="Largest weight shard written, e.g. 5GB.")] = "5GB",
) -> None:
    """Convert InternVL (InternLM2 or Qwen2 text) to InternVLForConditionalGeneration; runs no remote code."""
    from transformers.utils.hub import convert_file_size_to_int

    from videosavi.builders.generate.models.internvl_convert import convert_internvl
    from videosavi.errors import ConfigError


    try:
        max_bytes = convert_file_size_to_int(max_shard_size)
    except ValueError as exc:
        raise ConfigError(f"--max-shard-size {max_shard_size!r}: use a number and a unit, e.g. 5GB or 500MB") from exc
    result = convert_internvl(model, out, revision=model_revision, force=force, max_shard_bytes=max_bytes)
    rec = result.record
    rev = f"@{rec['source_revision']}" if rec["source_revision"] else ""
    lm = rec["language_model"]
    typer.echo(f"converted {rec['source']}{rev} ({lm['original']} -> {lm['native']}) to {result.out}")
    typer.echo(
        f"{rec['tensors']['source']} tensors -> {rec['tensors']['native']} in {len(rec['files'])} file(s), "
        f"{result.seconds:.1f} s; source weights sha256 {rec['source_weights_sha256'][:16]}"
    )


@model_app.command("serve", cls=VocabCommand,
                   context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly_errors
def serve(
    ctx: typer.Context,
    model: ServeModel,
    config: Config = None,
    port: Annotated[Optional[int], typer.Option(
        "--port", min=1, max=65535, help="Port to serve on (default: the config's model.base_url, else 8000).")] = None,
    vllm: Annotated[Optional[str], typer.Option(
        "--vllm", metavar="PATH", help="The vllm executable (default: vllm on PATH).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the vllm command and the base_url, and start nothing.")] = False,
) -> None:
    """Serve --model with vLLM, flagged for builds of --config: frames per prompt, context length, prefix caching,
    structured outputs, the config's model name. Arguments after `--` go to `vllm serve` as they are."""
    import os
    import shlex

    from videosavi.builders.generate.models.vllm_serve import find_vllm, plan_summary, vllm_plan
    from videosavi.config import load_config

    cfg = load_config(announce_config(config))
    plan = vllm_plan(cfg, model, port=port, extra=tuple(ctx.args))
    executable = vllm or "vllm" if dry_run else find_vllm(vllm)
    command = plan.command(executable)
    typer.echo(plan_summary(plan), err=True)
    typer.echo(shlex.join(command), err=True)
    typer.echo(plan.base_url)
    if cfg.model.backend != "openai":
        typer.echo(f"note: {config or 'the demo config'} builds with the {cfg.model.backend} backend; to build through "
                   f"this server, set model: {{backend: openai, name_or_path: {plan.served_name}, base_url: "
                   f"{plan.base_url}}}", err=True)
    if dry_run:
        return
    typer.echo(f"starting vLLM; it serves when {plan.base_url}/models answers (minutes on a CPU)", err=True)
    os.execv(command[0], command)


def register(app: typer.Typer) -> None:
    """Add the `savi model` group to the app."""
    app.add_typer(model_app, name="model")

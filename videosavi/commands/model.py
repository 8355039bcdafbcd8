"""`savi model convert`: turn an original InternVL2.5/3 checkpoint into transformers' native layout,
so the paper's backbone runs in the in-process backend and `savi train` without remote code."""

from __future__ import annotations

from typing import Annotated

import typer

from videosavi.commands._common import friendly_errors
from videosavi.commands.options import (
    ConvertOut,
    ModelRevision,
    SourceModel,
    vocab_command,
)

model_app = typer.Typer(name="model", help="Prepare model checkpoints for videosavi.", no_args_is_help=True)


@model_app.command("convert", cls=vocab_command(
    legacy={"--revision": "--model-revision"},
    retired={"-r": "-r is the dataset's --revision in every command: write --model-revision REV"},
    positionals=("--model", "--out")))
@friendly_errors
def convert(
    model: SourceModel,
    out: ConvertOut,
    model_revision: ModelRevision = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace --out if it exists, once the new one is complete.")] = False,
    max_shard_size: Annotated[str, typer.Option(
        "--max-shard-size", help="Largest weight shard written, e.g. 5GB.")] = "5GB",
) -> None:
    """Convert InternVL (InternLM2 or Qwen2 text) to InternVLForConditionalGeneration; runs no remote code."""
    from transformers.utils.hub import convert_file_size_to_int

    from videosavi.builders.models.internvl_convert import convert_internvl
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


def register(app: typer.Typer) -> None:
    """Add the `savi model` group to the app."""
    app.add_typer(model_app, name="model")

"""The `savi` command tree as data: every command, its parameters, and the options table of docs/cli.md.

`python -m tests.helpers.cli_tree` prints the table; tests/test_cli_vocabulary.py checks that docs/cli.md holds
exactly that table, so the documented options never drift from the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from videosavi.cli import app, build_app


def commands() -> Iterator[tuple[str, Any]]:
    """(`savi build`, click command) for every leaf command of `savi` (and every group that runs on its own),
    then `savi-build`."""

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if getattr(cmd, "commands", None):
            if getattr(cmd, "invoke_without_command", False):  # a group that is also a command: `savi bench`
                yield " ".join(path), cmd
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(typer.main.get_command(app), ["savi"])
    yield "savi-build", typer.main.get_command(build_app)


def is_option(param: Any) -> bool:
    return param.param_type_name == "option"


def flags(param: Any) -> list[str]:
    return [*param.opts, *param.secondary_opts]


def visible(param: Any) -> bool:
    return not getattr(param, "hidden", False)


def options_table() -> str:
    """One markdown row per command: its visible arguments and options (long/short)."""
    lines = ["| command | arguments | options |", "|---|---|---|"]
    for path, cmd in commands():
        if path == "savi-build":
            continue  # the same as `savi build`
        args = [(p.name or "").upper() + ("..." if p.nargs == -1 else "")
                for p in cmd.params if not is_option(p) and visible(p)]
        opts = []
        for p in cmd.params:
            if is_option(p) and visible(p) and p.name != "help":
                longs = [f for f in flags(p) if f.startswith("--")]
                shorts = [f for f in flags(p) if not f.startswith("--")]
                opts.append("/".join([longs[0], *shorts]) if len(longs) == 1 else "/".join(longs))
        lines.append(f"| `{path}` | {', '.join(args)} | {', '.join(f'`{o}`' for o in opts)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(options_table(), end="")

"""Running git for the local store: one clean environment, one error type.

The store must behave the same on a developer laptop and a CI runner: the user's global and system
git config (signing, hooks paths, excludes, default branch) are ignored, the identity is explicit
(CI machines have none), and git never waits for a terminal prompt.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from videosavi.errors import PublishError

IDENTITY = {
    "GIT_AUTHOR_NAME": "videosavi",
    "GIT_AUTHOR_EMAIL": "videosavi@localhost",
    "GIT_COMMITTER_NAME": "videosavi",
    "GIT_COMMITTER_EMAIL": "videosavi@localhost",
}
# Variables a parent git process (a hook, an IDE) may have set that would redirect our commands.
_INHERITED_GIT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                       "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_GIT_VARS}
    env.update(IDENTITY)
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
                "LC_ALL": "C"})
    if extra:
        env.update(extra)
    return env


def run_git(args: list[str | Path], *, git_dir: Path | None = None, work_tree: Path | None = None,
            cwd: Path | None = None, input_bytes: bytes | None = None, check: bool = True,
            error: type[Exception] = PublishError, what: str = "git") -> subprocess.CompletedProcess[bytes]:
    """Run `git [--git-dir D] [--work-tree W] ARGS`; raise `error` with git's message on failure."""
    cmd: list[str] = ["git"]
    if git_dir is not None:
        cmd.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        cmd.append(f"--work-tree={work_tree}")
    cmd.extend(str(a) for a in args)
    proc = subprocess.run(cmd, input=input_bytes, capture_output=True, env=git_env(), cwd=cwd, check=False)
    if check and proc.returncode != 0:
        raise error(f"{what} failed: {one_line(proc.stderr) or one_line(proc.stdout) or f'exit {proc.returncode}'}")
    return proc


def one_line(output: bytes, limit: int = 400) -> str:
    """git's message as one line: its non-empty lines joined by '; ' (a push rejection spans several)."""
    lines = [" ".join(line.split()) for line in output.decode("utf-8", "replace").splitlines()]
    text = "; ".join(line for line in lines if line and not line.startswith(("To ", "hint:")))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def git_out(args: list[str | Path], *, git_dir: Path | None = None, work_tree: Path | None = None,
            cwd: Path | None = None, input_bytes: bytes | None = None, check: bool = True,
            error: type[Exception] = PublishError, what: str = "git") -> str:
    """`run_git`'s standard output as text, stripped."""
    return run_git(args, git_dir=git_dir, work_tree=work_tree, cwd=cwd, input_bytes=input_bytes, check=check,
                   error=error, what=what).stdout.decode("utf-8").strip()

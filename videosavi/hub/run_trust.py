"""A run directory is trusted only for what its build wrote (DESIGN.md, "Trust and overwrite").

Publishing copies a run directory's files into a revision that others train on, so before anything is
read: every file publishing reads must be a regular file inside the run directory (a symbolic link
`prompts/answer.txt -> /etc/passwd` would publish that file, and training would use it as the answer
template), the templates must hash to what build.json recorded when they were used, and the run must
be complete (no pending videos, no stop, no shortfall it was not allowed, at least one pair). Pure
checks over paths and `BuildInfo`; each problem is one line naming the file and what to do.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from videosavi.hashing import text_hash
from videosavi.run_dir import DATA_DIR, RunDir
from videosavi.schemas import BuildInfo

# The files and folders publishing reads, relative to the run directory (folders: their files too).
READ_FILES = ("build.json", "videos.parquet", "quarantine.jsonl", "skipped.jsonl")
READ_FOLDERS = (DATA_DIR, "prompts")


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file (device, pipe or socket)"


def untrusted_files(run: RunDir) -> list[str]:
    """Problems with the paths publishing would open: links (whatever they point at), special files,
    folders where a file belongs. Checked without following anything, before any file is opened."""
    problems: list[str] = []

    def check(rel: str, want_dir: bool) -> bool:
        try:
            mode = os.lstat(run.path / rel).st_mode
        except FileNotFoundError:
            return False
        ok = stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)
        if not ok:
            problems.append(f"{rel} is {_kind(mode)}: a run directory holds only the regular files its build "
                            "wrote; replace it with the file itself, or build again")
        return ok

    for rel in READ_FILES:
        check(rel, want_dir=False)
    for folder in READ_FOLDERS:
        if check(folder, want_dir=True):
            for entry in sorted(os.listdir(run.path / folder)):
                check(f"{folder}/{entry}", want_dir=False)
    return problems


def template_problems(info: BuildInfo, prompts_dir: Path) -> list[str]:
    """Each template must be UTF-8 text hashing to the hash build.json recorded when it was used, and
    prompts/ may hold no template build.json does not name."""
    problems: list[str] = []
    present = sorted(p for p in prompts_dir.glob("*.txt")) if prompts_dir.is_dir() else []
    for path in present:
        rel = f"prompts/{path.name}"
        expected = info.prompts.get(path.stem)
        if expected is None:
            problems.append(f"{rel}: build.json names no template {path.stem!r}; remove it or build again")
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{rel} is not UTF-8 text (byte {exc.start}); build again")
            continue
        if text_hash(text, len(expected)) != expected:
            problems.append(f"{rel} was changed after the build: it hashes to {text_hash(text, len(expected))}, "
                            f"build.json recorded {expected}; restore it or build again")
    return problems


def incomplete_reasons(info: BuildInfo, run_path: Path) -> list[str]:
    """Why the run must not be published yet, each with the command that completes it (pure)."""
    again = (f"run the same savi-build command again (savi-build --iteration {info.iteration} --out {run_path} "
             "with its --config and --data-root) to complete it, then publish")
    reasons: list[str] = []
    if info.stopped:
        reasons.append(f"the build stopped before completing ({info.stopped}); fix that, then {again}")
    pending = sum(fill.pending_videos for fill in info.counts.sources.values())
    pending = max(pending, info.counts.skip_reasons.get("pending_call_error", 0))
    if pending:
        reasons.append(f"{pending} video(s) are still pending (their model calls failed); {again}")
    if info.limit_videos is None and not info.allow_shortfall:
        short = {name: fill for name, fill in sorted(info.counts.sources.items()) if fill.shortfall_pairs > 0}
        if short and not pending:
            listed = ", ".join(f"{name} {f.delivered_pairs} of {f.requested_pairs}" for name, f in short.items())
            reasons.append(f"sources delivered fewer pairs than their quota ({listed}); give them more videos "
                           "and run savi-build again, or build with savi-build --allow-shortfall to publish fewer "
                           "pairs on purpose")
    if info.counts.pairs == 0 and not reasons:
        skipped = ", ".join(f"{k}: {n}" for k, n in sorted(info.counts.skip_reasons.items())) or "none"
        reasons.append(f"it holds 0 pairs (videos skipped by reason: {skipped}); check the build's sources and "
                       "model (savi doctor), then run savi-build again")
    return reasons

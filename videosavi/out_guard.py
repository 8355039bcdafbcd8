"""What `--out` may be, and what `--overwrite` may replace there.

Overwriting means "replace what this command wrote", never "delete a folder". Three rules, shared by
every command that writes an OUT folder or file:

1. **OUT is apart from the inputs.** An OUT that is, contains or lies inside an input (a data root or
   video root, the source checkpoint, a store, a run directory) is refused, whatever the flags: an
   export into the data root would replace the videos its rows point at.
2. **Only what the command wrote is replaced.** A command that writes a folder leaves a marker in it
   (`.videosavi-out.json`: the command's name and the entries it wrote, like datatrove's completion
   markers). `--overwrite` replaces a folder only when its marker names the same command and
   it holds nothing the marker does not list; a folder without a marker is someone else's.
3. **Replacing is writing beside and renaming.** The new content is written in a folder beside OUT;
   the old OUT is renamed aside, the new one renamed into place, and only then is the old one removed.

Files passed as `--out`/`--key` are replaced only with the flag. Pure checks raise `OutRefusedError`
(one line, exit 2); nothing is touched before they pass.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from collections.abc import Collection, Mapping
from pathlib import Path

from videosavi.errors import OutRefusedError

MARKER = ".videosavi-out.json"
# Working files any command may leave beside its output (the run-directory lock and its holder record).
ALWAYS_OWNED = frozenset({MARKER, ".videosavi.lock", ".videosavi.lock.json"})
MAX_NAMED = 3


def _abs(path: str | Path) -> Path:
    """The path as the file system resolves it (links followed; a missing tail kept as written)."""
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def check_apart(out: str | Path, inputs: Mapping[str, str | Path | None], *, flag: str = "--out",
                containers: Mapping[str, str | Path | None] | None = None) -> None:
    """Refuse an OUT that is, contains or lies inside one of `inputs` (label -> path; None is skipped),
    or that is or contains one of `containers` (an OUT may sit inside those, e.g. runs/ under a data
    root that is the current folder)."""
    o = _abs(out)
    for label, given in {**(containers or {}), **inputs}.items():
        if given is None:
            continue
        p = _abs(given)
        if o == p:
            problem = f"is the {label} itself"
        elif p.is_relative_to(o):
            problem = f"contains the {label} {p}"
        elif label in inputs and o.is_relative_to(p):
            problem = f"lies inside the {label} {p}"
        else:
            continue
        raise OutRefusedError(f"{flag} {out} {problem}: writing there could replace what the command reads; "
                              f"choose a folder apart from it")


def read_marker(folder: Path) -> dict[str, object] | None:
    """The marker of a folder a command wrote, or None (absent, a link, or not ours)."""
    path = Path(folder) / MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("command"), str) else None


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _owned(name: str, owned: Collection[str]) -> bool:
    """`name` is one of `owned` (names or glob patterns such as `*.safetensors`)."""
    return name in ALWAYS_OWNED or any(fnmatch.fnmatchcase(name, pattern) for pattern in owned)


def _whose(folder: Path) -> str:
    marker = read_marker(folder)
    return f"its {MARKER} names {marker['command']}" if marker else f"it has no {MARKER}"


def _named(names: Collection[str]) -> str:
    shown = ", ".join(sorted(names)[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def foreign_entries(folder: Path, command: str, owned: Collection[str] = ()) -> list[str] | None:
    """Entries of `folder` that `command` did not write: None when the folder has no marker of
    `command`, else those that neither the marker lists nor `owned` names (or matches)."""
    marker = read_marker(folder)
    if marker is None or marker.get("command") != command:
        return None
    listed = marker.get("entries")
    written = {str(n) for n in listed} if isinstance(listed, list) else set()
    return [n for n in _entries(folder) if n not in written and not _owned(n, owned)]


def check_replaceable(out: str | Path, command: str, *, force: bool, flag: str,
                      owned: Collection[str] = (), legacy: str | None = None) -> bool:
    """May `command` write its folder OUT? False: OUT is new or empty; True: OUT holds an earlier
    result of `command` that `force` may replace. Refused: OUT is a file or a link, holds something
    without `force`, or holds anything `command` did not write. `legacy` names the file whose
    presence marks a result written before markers existed (then every entry must be in `owned`)."""
    out = Path(out)
    if out.is_symlink():
        raise OutRefusedError(f"--out {out} is a symbolic link; give the folder itself")
    if not out.exists():
        return False
    if not out.is_dir():
        raise OutRefusedError(f"--out {out} exists and is not a folder")
    entries = [n for n in _entries(out) if n not in ALWAYS_OWNED - {MARKER}]
    if not entries:
        return False
    if not force:
        raise OutRefusedError(f"--out {out} is not empty; choose another folder, or pass {flag} to replace what "
                              f"{command} wrote there")
    foreign = foreign_entries(out, command, owned)
    if foreign is None:
        if legacy is not None and legacy in entries and all(_owned(n, owned) for n in entries):
            return True
        raise OutRefusedError(f"--out {out} was not written by {command} ({_whose(out)}): {flag} replaces only "
                              f"what {command} wrote; choose another folder")
    if foreign:
        raise OutRefusedError(f"--out {out} holds {len(foreign)} thing(s) {command} did not write ({_named(foreign)}): "
                              f"{flag} replaces only what {command} wrote; move them, or choose another folder")
    return True


def write_marker(folder: Path, command: str, entries: Collection[str] | None = None) -> None:
    """Mark `folder` as written by `command` (listing `entries`, default: what it holds now); written
    beside and renamed, so a reader never sees half a marker."""
    folder = Path(folder)
    names = sorted(entries) if entries is not None else [n for n in _entries(folder) if n not in ALWAYS_OWNED]
    tmp = folder / f"{MARKER}.tmp{os.getpid()}"
    tmp.write_text(json.dumps({"command": command, "entries": names}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MARKER)


def check_folder(out: str | Path, command: str, *, owned: Collection[str], replacing: bool, flag: str,
                 legacy: str | None = None) -> None:
    """For a command that writes in place (a build, a training run): refuse an OUT that is a file, or
    that holds anything `command` did not write when `replacing` (it will delete its earlier files).
    `owned` are the names (or patterns) the command writes; `legacy` the file that marks a result
    written before markers existed. Touches nothing (`claim_folder` then creates and marks OUT)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutRefusedError(f"--out {out} exists and is not a folder")
    if not out.is_dir() or not replacing:
        return
    entries = [n for n in _entries(out) if n not in ALWAYS_OWNED]
    foreign = foreign_entries(out, command, owned)
    if foreign is None:  # no marker of ours: an empty folder, an older result, or someone else's
        if entries and (legacy is None or legacy not in entries):
            raise OutRefusedError(
                f"--out {out} was not written by {command} ({_whose(out)}): {flag} replaces only what "
                f"{command} wrote; choose another folder")
        foreign = [n for n in entries if not _owned(n, owned)]
    if foreign:
        raise OutRefusedError(
            f"--out {out} holds {len(foreign)} thing(s) {command} did not write ({_named(foreign)}): {flag} "
            f"replaces only what {command} wrote; move them, or choose another folder")


def claim_folder(out: str | Path, command: str, owned: Collection[str]) -> Path:
    """Create OUT and mark it as `command`'s (once `check_folder` passed), before anything is written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = read_marker(out)
    if marker is None or marker.get("command") != command:
        write_marker(out, command, entries=sorted(owned))
    return out


def replace_folder(tmp: Path, out: Path, command: str) -> None:
    """Mark the finished `tmp` as `command`'s, then put it at `out`: the old OUT (checked by
    `check_replaceable`) is renamed aside, `tmp` renamed into place, and only then the old one removed."""
    write_marker(tmp, command)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_out_file(path: str | Path, *, overwrite: bool, option: str, flag: str) -> None:
    """A file given as `option` (`--out`, `--key`) is replaced only with `flag`; a folder or a link
    in its place is refused either way."""
    path = Path(path)
    if path.is_symlink():
        raise OutRefusedError(f"{option} {path} is a symbolic link; give the file itself")
    if path.is_dir():
        raise OutRefusedError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutRefusedError(f"{option} {path} already exists; choose another name, or pass {flag} to replace it")

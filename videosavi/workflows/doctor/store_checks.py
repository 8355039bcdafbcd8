"""Can the iterations be published where the run will publish them? Checked without writing anything.

The local store must be creatable or writable (and git present: it is bare git repositories); a hub
endpoint (`savi hub serve`) must answer; the real Hub needs a token that `whoami` accepts (without a
token there is nothing to check, so the row is skipped).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from videosavi.hub.serve import endpoint_answers
from videosavi.paths import default_store
from videosavi.workflows.doctor.check import Check, fail, ok, skipped

STORE_FIX = "pass a writable --store (or set VIDEOSAVI_STORE)"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_local_store(store: Path | None) -> Check:
    path = Path(store).expanduser().resolve() if store else default_store().resolve()
    name = "store"
    if shutil.which("git") is None:
        return fail(name, "git is not on PATH (the local store is bare git repositories)", "install git")
    if path.exists():
        if not path.is_dir():
            return fail(name, f"{path} exists and is not a folder", STORE_FIX)
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".savi-doctor-"):
                pass
        except OSError as exc:
            return fail(name, f"cannot write into {path}: {exc.strerror or exc}", STORE_FIX)
        return ok(name, f"{path} is writable")
    parent = _nearest_existing(path.parent)
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return ok(name, f"{path} can be created (under {parent})")
    return fail(name, f"{path} cannot be created: {parent} is not a writable folder", STORE_FIX)


def check_endpoint(endpoint: str) -> Check:
    if endpoint_answers(endpoint, timeout=5.0):
        return ok("hub endpoint", f"a hub API answers at {endpoint}")
    return fail("hub endpoint", f"nothing answers at {endpoint}",
                "start it (`savi hub serve --store DIR` prints its URL), or check --endpoint")


def check_hub() -> Check:
    from huggingface_hub import HfApi, get_token

    token = get_token()
    if not token:
        return skipped("Hub", "skipped: no Hugging Face token (set HF_TOKEN or run `hf auth login` before publishing)")
    try:
        who = HfApi(token=token).whoami()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        return fail("Hub", f"whoami with your token failed: {type(exc).__name__}: {first}",
                    "renew the token (`hf auth login`, or HF_TOKEN) with write access, and check the network")
    return ok("Hub", f"logged in as {who.get('name', '?')}")


def check_publishing(*, store: Path | None, endpoint: str | None, hub: bool) -> Check:
    if endpoint:
        return check_endpoint(endpoint)
    if hub:
        return check_hub()
    return check_local_store(store)

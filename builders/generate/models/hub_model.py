"""Fail in seconds, with the way out, when a `--model` hub id cannot be had.

transformers retries an unreachable hub for minutes (measured: 143 s and 68 lines of retry warnings
for an unknown id on a machine without network) before it says anything useful. A model that is a
local folder, or whose files are in the local Hugging Face cache, needs no network and is not
checked. Anything else is asked for once, with a short timeout: with `HF_HUB_OFFLINE` set, or when
that first request cannot connect, or when the hub says there is no such model, the build or the
training stops at once with one line that names the alternatives.
"""

from __future__ import annotations

from pathlib import Path

from videosavi.errors import ModelError

PROBE_TIMEOUT_S = 10.0
_NOT_FOUND = {"RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError", "EntryNotFoundError"}


def _hint() -> str:
    return ("use a tiny model (tiny-qwen2-vl), a local model folder, or convert a downloaded checkpoint with "
            "`savi model convert`")


def is_cached(repo_id: str, revision: str | None) -> bool:
    """Is the model's config in the local Hugging Face cache (so loading needs no network)?"""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # a malformed id is not cached; the probe below reports it
        return False
    return isinstance(found, str)


def is_hub_id(name: str) -> bool:
    """Could `name` be a hub repository id (`org/name` or `name`)? A path such as `/models/x/y` cannot."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def require_model_source(name_or_path: str, revision: str | None = None) -> None:
    """Return if `name_or_path` can be loaded without waiting on the network; raise `ModelError` if not.

    Only hub ids are asked about: a local path that does not exist (`/models/typo`) is not one, and is
    reported by the loader itself, which needs no network to say so."""
    if Path(name_or_path).expanduser().exists() or not is_hub_id(name_or_path) or is_cached(name_or_path, revision):
        return
    from huggingface_hub import HfApi, constants

    where = f"{name_or_path!r}" + (f" (revision {revision})" if revision else "")
    if constants.HF_HUB_OFFLINE:
        raise ModelError(f"model {where} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE "
                         f"is set: {_hint()}")
    try:
        HfApi().model_info(name_or_path, revision=revision, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:
        name = type(exc).__name__
        if name in _NOT_FOUND:
            raise ModelError(f"model {where} is not a local folder and the hub has no such model ({name}): "
                             f"{_hint()}") from exc
        if any(k in name for k in ("Connect", "Timeout", "Network", "Transport", "Proxy")) or isinstance(exc, OSError):
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ModelError(f"model {where} is not a local folder or cached, and the hub cannot be reached "
                             f"({name}: {first}): {_hint()}") from exc
        # any other answer (a server error, ...): let the loader try and report it

"""Load a published revision safely: resolve it to a commit sha first, then read exactly that commit.

Why not just `datasets.load_dataset(repo, revision=tag)`? Against a server that answers an unknown
revision with anything but the Hub's 404 `RevisionNotFound` (a plain mirror such as olah answers 401;
`savi hub serve` answers like the Hub), `datasets` may fall back to whatever revision it cached before and return it
without a word: training on the wrong iteration. Here the revision is looked up by exact name in the
repository's refs (`HfApi.list_repo_refs`) or, for a store path, in the bare repository itself. A
missing revision raises `RevisionNotFoundError`; a found one is downloaded by sha into a snapshot
folder (README + the config's data files) and loaded from there, so no later step can substitute
another revision.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from videosavi.errors import HubError, RevisionNotFoundError
from videosavi.hub.names import FULL_SHA, split_repo_id
from videosavi.hub.refs import pick_revision
from videosavi.hub.store import GitStore
from videosavi.paths import cache_dir as videosavi_cache_dir

REPO_TYPE = "dataset"
MAX_CARD_BYTES = 16 << 20
_NOT_FOUND_ERRORS = {"RepositoryNotFoundError", "RevisionNotFoundError", "RemoteEntryNotFoundError",
                     "EntryNotFoundError", "GatedRepoError"}


def _api(endpoint: str | None, token: str | None) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token)


def _hub_failure(exc: Exception, repo: str, where: str) -> Exception:
    """Map huggingface_hub errors to ours: missing -> RevisionNotFoundError, the rest -> HubError."""
    name = type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if name == "OfflineModeIsEnabled":
        return HubError(f"cannot resolve a revision of {repo} at {where}: HF_HUB_OFFLINE is set "
                        "(unset it, or pass a full commit sha that is already cached, or store=PATH)")
    if name in _NOT_FOUND_ERRORS or status in (401, 404):
        return RevisionNotFoundError(f"no dataset repository {repo!r} at {where} (or it is not readable "
                                     "with your token)")
    first = (str(exc).strip().splitlines() or [""])[0]
    return HubError(f"cannot reach {where} for {repo}: {name}: {first}")


def _endpoint_name(api: Any) -> str:
    return str(getattr(api, "endpoint", "the Hub"))


def _sha_exists(api: Any, repo: str, sha: str) -> bool:
    """Is `sha` a commit of `repo`? Asked through the tree route, which every Hub-like server answers
    with a 404 for an unknown sha (some mirrors, olah 0.5.4 among them, fail on the revision route)."""
    try:
        next(iter(api.list_repo_tree(repo, revision=sha, repo_type=REPO_TYPE)), None)
    except Exception as exc:
        mapped = _hub_failure(exc, repo, _endpoint_name(api))
        if isinstance(mapped, RevisionNotFoundError):
            return False
        raise mapped from exc
    return True


def resolve_revision(repo: str, revision: str, *, store: str | Path | None = None, endpoint: str | None = None,
                     token: str | None = None) -> str:
    """Commit sha of `revision` (tag, branch or full sha) in `repo`; `RevisionNotFoundError` if absent.

    `store`: a local store path, read with git directly (no server). Otherwise the Hub API at
    `endpoint` (default: `HF_ENDPOINT`, else huggingface.co), e.g. a `savi hub serve` server.
    """
    split_repo_id(repo)
    if not revision:
        raise RevisionNotFoundError(f"no revision given for {repo}")
    if store is not None and endpoint is not None:
        raise HubError("pass either store= (read the store with git) or endpoint= (a server), not both")
    if store is not None:
        return GitStore(store).resolve(repo, revision)
    from videosavi.hub.hf_backend import refs_from_api

    api = _api(endpoint, token)
    where = _endpoint_name(api)
    try:
        refs = refs_from_api(api.list_repo_refs(repo, repo_type=REPO_TYPE))
    except Exception as exc:
        raise _hub_failure(exc, repo, where) from exc
    exists = bool(FULL_SHA.match(revision)) and _sha_exists(api, repo, revision)
    return pick_revision(refs, revision, repo=repo, commit_exists=exists)


def config_data_files(readme_text: str, config_name: str, *, repo: str, revision: str) -> dict[str, list[str]]:
    """{split: [glob patterns]} that the card's YAML declares for `config_name` (HubError if absent)."""
    from huggingface_hub import DatasetCard

    configs = DatasetCard(readme_text).data.to_dict().get("configs") or []
    names = [c.get("config_name", "default") for c in configs]
    for c in configs:
        if c.get("config_name", "default") != config_name:
            continue
        files = c.get("data_files")
        if isinstance(files, str):
            return {"train": [files]}
        out: dict[str, list[str]] = {}
        for entry in files or []:
            if isinstance(entry, str):
                out.setdefault("train", []).append(entry)
            else:
                path = entry.get("path")
                out.setdefault(entry.get("split", "train"), []).extend([path] if isinstance(path, str) else path)
        return out
    raise HubError(f"{repo}@{revision} has no config {config_name!r} (it declares: {', '.join(names) or 'none'})")


def card_features(readme_text: str, config_name: str) -> Any:
    """The `datasets.Features` the card's `dataset_info` declares for a config (None if it declares none)."""
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    info = DatasetInfosDict.from_dataset_card_data(DatasetCard(readme_text).data).get(config_name)
    return info.features if info is not None else None


def _store_snapshot(store: GitStore, repo: str, sha: str, root: Path) -> Path:
    """The whole tree of commit `sha`, exported once into `root/<org>/<name>/<sha>` (immutable)."""
    org, name = split_repo_id(repo)
    final = root / org / name / sha
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=final.parent))
    try:
        try:
            store.export(repo, sha, tmp)
        except tarfile.TarError as exc:  # a link out of the tree, an absolute path: refused by the "data" filter
            raise HubError(f"{repo}@{sha[:12]} holds a file that cannot be read safely ({str(exc)[:200]}): it was "
                           "not written by savi publish, so it is not used") from exc
        try:
            os.replace(tmp, final)
        except OSError:  # another process exported the same commit first: identical content
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _hub_snapshot(repo: str, sha: str, config_name: str, *, endpoint: str | None, token: str | None,
                  cache_dir: Path | None) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download

    where = endpoint or "the Hub"
    kwargs: dict[str, Any] = dict(repo_type=REPO_TYPE, revision=sha, endpoint=endpoint, token=token,
                                  cache_dir=str(cache_dir) if cache_dir else None)
    try:
        readme = hf_hub_download(repo, "README.md", **kwargs)
    except Exception as exc:
        raise _hub_failure(exc, repo, where) from exc
    text = _card_text(Path(readme), f"{repo}@{sha[:12]}")
    try:
        files = config_data_files(text, config_name, repo=repo, revision=sha)
    except HubError:
        raise
    except Exception as exc:  # a card whose YAML is not what publishing writes
        raise HubError(f"{repo}@{sha[:12]}: README.md does not declare its configs as savi publish writes them "
                       f"({type(exc).__name__}: {str(exc)[:160]})") from exc
    _check_patterns(files, f"{repo}@{sha[:12]}")
    patterns = [p for pats in files.values() for p in pats]
    try:
        return Path(snapshot_download(repo, allow_patterns=["README.md", *patterns], **kwargs))
    except Exception as exc:
        raise _hub_failure(exc, repo, where) from exc


def _card_text(readme: Path, where: str) -> str:
    """The card as text: a revision anyone published may hold anything there."""
    data = readme.read_bytes()
    if len(data) > MAX_CARD_BYTES:
        raise HubError(f"{where}: README.md is {len(data)} bytes (at most {MAX_CARD_BYTES}); not a dataset card")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HubError(f"{where}: README.md is not UTF-8 text (byte {exc.start}); not a dataset card") from exc


def _check_patterns(files: dict[str, list[str]], where: str) -> None:
    """The card's data files must lie inside the revision: a pattern `../../x` or `/etc/*` would have
    `datasets` read files of this machine as the revision's rows."""
    for patterns in files.values():
        for pattern in patterns:
            parts = str(pattern).replace("\\", "/").split("/")
            if not isinstance(pattern, str) or pattern.startswith("/") or ".." in parts or ":" in parts[0]:
                raise HubError(f"{where}: README.md declares data files {str(pattern)[:80]!r} outside the revision; "
                               "not a card savi publish writes")


def load_revision(repo: str, revision: str, *, store: str | Path | None = None, endpoint: str | None = None,
                  token: str | None = None, config_name: str = "default", split: str | None = "train",
                  cache_dir: str | Path | None = None) -> Any:
    """`datasets.Dataset` of `repo` at exactly `revision`; raises `RevisionNotFoundError` if it does not exist.

    Reads a store path directly with git (`store=`), or any Hub API: a `savi hub serve` server
    (`endpoint="http://127.0.0.1:8090"`) or the Hub itself (default endpoint, `HF_ENDPOINT`).
    `cache_dir` holds the downloaded snapshot (`<cache_dir>/hub`) and the Arrow cache
    (`<cache_dir>/datasets`); by default the usual Hugging Face caches (server/Hub) or the
    videosavi cache (store).
    """
    import datasets

    sha = resolve_revision(repo, revision, store=store, endpoint=endpoint, token=token)
    base = Path(cache_dir).expanduser() if cache_dir else None
    if store is not None:
        git_store = GitStore(store)
        snapshot = _store_snapshot(git_store, repo, sha, (base or videosavi_cache_dir()) / "snapshots")
    else:
        snapshot = _hub_snapshot(repo, sha, config_name, endpoint=endpoint, token=token,
                                 cache_dir=base / "hub" if base else None)
    readme = snapshot / "README.md"
    if not readme.is_file():
        raise HubError(f"{repo}@{revision} ({sha[:12]}) has no README.md declaring its configs")
    text = _card_text(readme, f"{repo}@{revision} ({sha[:12]})")
    try:
        files = config_data_files(text, config_name, repo=repo, revision=sha)
        features = card_features(text, config_name)
    except HubError:
        raise
    except Exception as exc:  # a card whose YAML is not what publishing writes
        raise HubError(f"{repo}@{revision} ({sha[:12]}): README.md does not declare its configs as savi publish "
                       f"writes them ({type(exc).__name__}: {str(exc)[:160]})") from exc
    _check_patterns(files, f"{repo}@{revision} ({sha[:12]})")
    if split is not None and split not in files:
        raise HubError(f"{repo}@{revision} config {config_name!r} has no split {split!r} (it has: {', '.join(files)})")
    if not all(p.endswith(".parquet") for pats in files.values() for p in pats):
        raise HubError(f"{repo}@{revision} config {config_name!r} is not parquet; load it with datasets directly")
    # Load the declared files of this one config with the declared features: no module inference over
    # the whole folder, and no chance for datasets to consult a Hub revision of its own.
    data_files = {s: [str(snapshot / p) for p in pats] for s, pats in files.items()}
    try:
        return datasets.load_dataset("parquet", data_files=data_files, split=split,
                                     features=features,
                                     cache_dir=str(base / "datasets") if base else None)
    except (ValueError, FileNotFoundError) as exc:
        raise HubError(f"cannot load {repo}@{revision} ({sha[:12]}) config {config_name!r}: {exc}") from exc


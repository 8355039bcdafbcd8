"""Does every configured source resolve under the data root? Read with the sampler's own readers.

A source passes when its manifest reads, its video folder exists and at least one listed file is
there (the first `MAX_FILES_CHECKED` usable rows are looked at, so a 10-million-row WebVid manifest
costs a second, not the sampler's whole walk).
"""

from __future__ import annotations

from pathlib import Path

from videosavi.builders.sources import PROBLEM, collect, read_source
from videosavi.builders.sources.sampler import file_status
from videosavi.config import BuildConfig, SourceConfig, load_config
from videosavi.errors import VideosaviError
from videosavi.workflows.doctor.check import Check, fail, ok, skipped

MAX_FILES_CHECKED = 200


def is_demo_layout(cfg: BuildConfig) -> bool:
    """The config reads the demo sources (manifests where `savi demo-data` writes them)."""
    def layout(c: BuildConfig) -> dict[str, tuple[str, str | None, str]]:
        return {name: (s.kind, s.manifest, s.root) for name, s in c.sources.items()}

    return layout(cfg) == layout(load_config("demo"))


def _fix(name: str, key: str, data_root: Path, config_label: str, demo: bool) -> str:
    if demo:
        return (f"write the demo videos there: `savi demo-data --out {data_root}`, or point --data-root at the folder "
                "that holds them")
    return f"check --data-root (now {data_root}) and sources.{name}.{key} in {config_label}"


def check_source(name: str, src: SourceConfig, data_root: Path, config_label: str, demo: bool) -> Check:
    label = f"source {name}"
    root = data_root / src.root
    if src.kind == "folder" and not root.is_dir():
        return fail(label, f"video folder {root} does not exist", _fix(name, "root", data_root, config_label, demo))
    try:
        frame = collect(read_source(name, src, data_root), f"the manifest of source {name!r}")
    except VideosaviError as exc:
        return fail(label, str(exc), _fix(name, "manifest", data_root, config_label, demo))
    if not root.is_dir():
        return fail(label, f"manifest reads ({frame.height} rows) but the video folder {root} does not exist",
                    _fix(name, "root", data_root, config_label, demo))
    usable = frame.filter(frame[PROBLEM].is_null())
    if usable.height == 0:
        example = frame[PROBLEM].drop_nulls().head(1).to_list()
        return fail(label, f"{src.manifest or root} lists no usable video ({frame.height} rows"
                    + (f"; e.g. {example[0]}" if example else "") + ")",
                    f"check that sources.{name}.kind ({src.kind}) and pattern match the manifest (docs/data.md)")
    paths = usable["video_path"].head(MAX_FILES_CHECKED).to_list()
    found = sum(1 for p in paths if file_status(root, p, src.follow_symlinks) is None)
    if not found:
        return fail(label, f"none of the first {len(paths)} listed files is under {root} (e.g. {root / paths[0]})",
                    _fix(name, "root and pattern", data_root, config_label, demo))
    return ok(label, f"{src.kind}: {usable.height} listed; {found} of the first {len(paths)} files found "
                     f"under {src.root}")


def _manifest_present(src: SourceConfig, data_root: Path) -> bool:
    return src.manifest is not None and src.manifest != "" and any(data_root.glob(src.manifest))


def check_data(cfg: BuildConfig, data_root: Path, config_label: str) -> list[Check]:
    """One row for the data root, then one per source."""
    demo = is_demo_layout(cfg)
    if data_root.exists() and not data_root.is_dir():
        return [fail("data root", f"{data_root} is a file, not a folder",
                     "pass --data-root (or set VIDEOSAVI_DATA_ROOT) to the folder the config's source paths are under"),
                *(skipped(f"source {name}", "needs the data root") for name in cfg.sources)]
    if not data_root.is_dir():
        fix = (f"write the demo videos: `savi demo-data --out {data_root}`" if demo
               else "pass --data-root (or set VIDEOSAVI_DATA_ROOT) to the folder the config's source paths are under")
        return [fail("data root", f"{data_root} is not a folder", fix),
                *(skipped(f"source {name}", "needs the data root") for name in cfg.sources)]
    if demo and not any(_manifest_present(src, data_root) for src in cfg.sources.values()):
        rows = [fail("data root", f"{data_root} holds no demo data (none of the demo manifests is there)",
                     f"write the demo videos: `savi demo-data --out {data_root}`, or point --data-root at them")]
    else:
        rows = [ok("data root", str(data_root))]
    rows += [check_source(name, src, data_root, config_label, demo) for name, src in cfg.sources.items()]
    return rows

"""`savi export`: a published revision as files other trainers read as they are.

ms-swift (`--format swift`) and LLaMA-Factory (`--format llamafactory`, also `sharegpt` without its
`dataset_info.json`) cannot map a row's `source` + relative `video_path` to a file, and know nothing
of clip spans. An export resolves every row's video under the user's roots (checked by sha256),
cuts STAR clips into files of their own (or writes the stored frames as images), and writes the
rows with absolute paths and the same prompt `savi train` uses. It sits above training: it reads
revisions with `training.revision.open_revision` and checks videos with `training.data.check_rows`.

Modules: `rows` (the neutral row), `sharegpt_jsonl` (one record per row, plus LLaMA-Factory's
dataset_info entry), `formats` (by name; ms-swift's rows are `videosavi.formats.swift_rows`'s, the
published `swift` config's writer), `media` (which file each row points at,
pure), `clip_cut` (PyAV), `frame_files` (images), `out_dir` (staging beside OUT), `run`
(`export_revision`).
"""

from videosavi.workflows.export.run import ExportOptions, ExportResult, export_revision

__all__ = ["ExportOptions", "ExportResult", "export_revision"]

"""The export formats by name: how a row is written and which side files a reader needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from videosavi.formats.swift_rows import swift_record
from videosavi.workflows.export import sharegpt_jsonl
from videosavi.workflows.export.rows import FILE_NAME, ExportRow


@dataclass(frozen=True)
class ExportFormat:
    name: str
    record: Callable[[ExportRow], dict[str, Any]]
    file_name: str
    side_files: Callable[[str], dict[str, Any]]  # dataset name -> {file name: JSON content}
    reader: str  # what loads it, for messages and docs


def swift_row(row: ExportRow) -> dict[str, Any]:
    """ms-swift's DPO row (the published `swift` config's writer) with the export's absolute media: the
    video file, or the frames the model saw as images."""
    if row.video is not None:
        return swift_record(row.prompt, row.chosen, row.rejected, videos=[row.video])
    return swift_record(row.prompt, row.chosen, row.rejected, images=list(row.frames or ()))


FORMATS: dict[str, ExportFormat] = {
    "swift": ExportFormat("swift", swift_row, FILE_NAME, lambda name: {},
                          "ms-swift: swift rlhf --rlhf_type dpo --dataset OUT/train.jsonl"),
    "llamafactory": ExportFormat(
        "llamafactory", sharegpt_jsonl.sharegpt_record, FILE_NAME,
        lambda name: {"dataset_info.json": sharegpt_jsonl.dataset_info(name)},
        "LLaMA-Factory: stage: dpo, dataset_dir: OUT, dataset: NAME (dataset_info.json)"),
    "sharegpt": ExportFormat("sharegpt", sharegpt_jsonl.sharegpt_record, FILE_NAME, lambda name: {},
                             "ShareGPT preference readers (the rows LLaMA-Factory reads, without dataset_info.json)"),
}

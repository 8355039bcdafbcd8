"""The export formats by name: how a row is written and which side files a reader needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from videosavi.workflows.export import sharegpt_jsonl, swift_jsonl
from videosavi.workflows.export.rows import ExportRow


@dataclass(frozen=True)
class ExportFormat:
    name: str
    record: Callable[[ExportRow], dict[str, Any]]
    file_name: str
    side_files: Callable[[str], dict[str, Any]]  # dataset name -> {file name: JSON content}
    reader: str  # what loads it, for messages and docs


FORMATS: dict[str, ExportFormat] = {
    "swift": ExportFormat("swift", swift_jsonl.swift_record, swift_jsonl.FILE_NAME, lambda name: {},
                          "ms-swift: swift rlhf --rlhf_type dpo --dataset OUT/train.jsonl"),
    "llamafactory": ExportFormat(
        "llamafactory", sharegpt_jsonl.sharegpt_record, sharegpt_jsonl.FILE_NAME,
        lambda name: {"dataset_info.json": sharegpt_jsonl.dataset_info(name)},
        "LLaMA-Factory: stage: dpo, dataset_dir: OUT, dataset: NAME (dataset_info.json)"),
    "sharegpt": ExportFormat("sharegpt", sharegpt_jsonl.sharegpt_record, sharegpt_jsonl.FILE_NAME, lambda name: {},
                             "ShareGPT preference readers (the rows LLaMA-Factory reads, without dataset_info.json)"),
}

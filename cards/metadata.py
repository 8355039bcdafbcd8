"""The card's YAML header: what the Hub and `datasets` read to know the configs and their features.

`configs` and `dataset_info` are derived (data-file patterns from the shard layout, features from the
pydantic models through `videosavi.schemas.arrow`), and written with `datasets`' own
`DatasetInfosDict.to_dataset_card_data`, so the header is exactly what `datasets` itself would write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from videosavi.config import BuildConfig
from videosavi.schemas import BuildInfo

TASK_CATEGORIES = ["video-text-to-text"]
TAGS = ["dpo", "preference", "synthetic", "video", "self-alignment"]
LANGUAGES = ["en"]
SPLIT = "train"
_SIZE_BOUNDS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


@dataclass(frozen=True)
class ConfigSpec:
    """One declared config: its files (a glob in the repository), row model and sizes."""

    name: str
    pattern: str
    model: type[BaseModel]
    num_rows: int
    num_bytes: int  # Arrow bytes in memory (what `datasets` calls dataset_size)
    download_size: int  # parquet bytes on disk


def size_category(n: int) -> str:
    """The Hub's size bucket for `n` rows."""
    for bound, label in _SIZE_BOUNDS:
        if n < bound:
            return label
    return "n>1B"


def license_of(info: BuildInfo) -> str:
    """The run's configured license; the config's default when build.json does not record one."""
    value = info.config.get("license")
    return str(value) if value else str(BuildConfig.model_fields["license"].default)


def configs_yaml(configs: list[ConfigSpec]) -> list[dict[str, Any]]:
    return [
        {"config_name": c.name, "data_files": [{"split": SPLIT, "path": c.pattern}],
         **({"default": True} if i == 0 else {})}
        for i, c in enumerate(configs)
    ]


def card_data(info: BuildInfo, configs: list[ConfigSpec], *, pretty_name: str | None = None) -> Any:
    """`DatasetCardData` with license, task, tags, size, configs and the derived `dataset_info`."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    from videosavi.schemas.arrow import features

    data = DatasetCardData(
        language=LANGUAGES,
        license=license_of(info),
        task_categories=TASK_CATEGORIES,
        tags=TAGS,
        size_categories=[size_category(configs[0].num_rows if configs else 0)],
        pretty_name=pretty_name or info.name,
        configs=configs_yaml(configs),
    )
    infos = {}
    for c in configs:
        splits = SplitDict()
        splits.add(SplitInfo(name=SPLIT, num_bytes=c.num_bytes, num_examples=c.num_rows))
        infos[c.name] = DatasetInfo(features=features(c.model), splits=splits, download_size=c.download_size,
                                    dataset_size=c.num_bytes, config_name=c.name)
    DatasetInfosDict(infos).to_dataset_card_data(data)
    return data

"""The card's YAML header: what the Hub and `datasets` read to know the configs and their features.

`configs` and `dataset_info` are derived (data-file patterns from the shard layout, features from the
pydantic models through `videosavi.schemas.arrow`), and written with `datasets`' own
`DatasetInfosDict.to_dataset_card_data`, so the header is exactly what `datasets` itself would write.
The rest uses only values the Hub accepts: its size buckets, `license_name`/`license_link` with a
custom (`other`) license, and the task and tags people search for when they want preference data for
video models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import BaseModel

from videosavi.config import BuildConfig, license_problem
from videosavi.errors import PublishError
from videosavi.schemas import BuildInfo

TASK_CATEGORIES = ["video-text-to-text"]
# What someone looking for video preference data types into the Hub's search: the training method
# (dpo, preference, rlhf; trl is the tag TRL's own preference sets carry), the modality and task, and
# how the data were made (synthetic, self-alignment: model outputs, no human labels).
TAGS = ["dpo", "preference", "rlhf", "trl", "video", "video-text-to-text", "video-qa", "synthetic",
        "self-alignment"]
LANGUAGES = ["en"]
ANNOTATIONS_CREATORS = ["machine-generated"]  # the critiques and preferences
LANGUAGE_CREATORS = ["machine-generated"]  # the questions and answers
SPLIT = "train"
# The Hub's size buckets (huggingface_hub's DatasetCardData; datasets' size_categories.json): the
# upper bound of each, exclusive; "n>1T" above the last.
_SIZE_BOUNDS = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                (10**11, "10B<n<100B"), (10**12, "100B<n<1T")]


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
    return "n>1T"


def license_of(info: BuildInfo) -> str:
    """The run's configured license; the config's default when build.json does not record one."""
    value = info.config.get("license")
    return str(value) if value else str(BuildConfig.model_fields["license"].default)


class LicenseFields(TypedDict, total=False):
    license: str
    license_name: str
    license_link: str


def license_fields(info: BuildInfo) -> LicenseFields:
    """`license`, plus `license_name` and `license_link` for a custom (`other`) license, as the Hub
    requires; `PublishError` when build.json's config lacks them (a run made before they existed)."""
    license = license_of(info)
    name, link = info.config.get("license_name"), info.config.get("license_link")
    problem = license_problem(license, name, link)
    if problem:
        raise PublishError(f"build.json config: {problem}; add them to the config's `config` section "
                           "in build.json (or to the YAML config and rebuild)")
    fields: LicenseFields = {"license": license}
    if license == "other":  # both present: `license_problem` refuses an `other` license without them
        fields["license_name"], fields["license_link"] = str(name), str(link)
    return fields


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
        **license_fields(info),
        annotations_creators=ANNOTATIONS_CREATORS,
        language_creators=LANGUAGE_CREATORS,
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

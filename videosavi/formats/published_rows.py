"""Record rows <-> the `default` config's rows (schemas/published.py), both ways (pure).

Publishing writes a build's `PreferencePair` shards as `PublishedPair` shards: `prompt` always filled
(rows built before builder g3 have it rendered from their question and the run's answer template, as
every derived format does), `chosen`/`rejected` as one assistant turn each, the texts kept under
`chosen_text`/`rejected_text`. Our own readers of a revision (training, export, statistics, human
evaluation) take the record form back with `record_columns`, which also passes a revision published
before this layout (text `chosen`/`rejected`, no text columns) through unchanged.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from videosavi.formats.dpo_prompt import row_prompts
from videosavi.schemas.arrow import arrow_schema
from videosavi.schemas.messages import assistant_message
from videosavi.schemas.published import TEXT_COLUMNS, PublishedPair


def published_rows(pairs: pa.Table, answer_template: str | None = None) -> pa.Table:
    """PreferencePair rows -> PublishedPair rows, in the same order."""
    schema = arrow_schema(PublishedPair)
    columns: dict[str, Any] = {}
    for name in schema.names:
        if name in pairs.column_names and name not in TEXT_COLUMNS and name != "prompt":
            columns[name] = pairs.column(name)
    columns["prompt"] = pa.array(row_prompts(pairs, answer_template), type=schema.field("prompt").type)
    for side, text_column in TEXT_COLUMNS.items():
        texts = pairs.column(side).to_pylist()
        columns[text_column] = pairs.column(side)
        columns[side] = pa.array([[assistant_message(t).model_dump()] for t in texts], type=schema.field(side).type)
    return pa.Table.from_arrays([columns[name].cast(schema.field(name).type) for name in schema.names],
                                schema=schema)


def is_published_layout(column_names: list[str]) -> bool:
    return all(text in column_names for text in TEXT_COLUMNS.values())


def record_columns(dataset: Any) -> Any:
    """A `datasets.Dataset` (or an Arrow table) of published rows with `chosen`/`rejected` as text again,
    in the record's column order; rows of an older layout are returned as they are."""
    names = list(dataset.column_names)
    if not is_published_layout(names):
        return dataset
    order = [n for n in names if n not in TEXT_COLUMNS.values()]
    if isinstance(dataset, pa.Table):
        table = dataset.drop_columns(list(TEXT_COLUMNS))
        table = table.rename_columns([{v: k for k, v in TEXT_COLUMNS.items()}.get(n, n) for n in table.column_names])
        return table.select(order)
    renamed = dataset.remove_columns(list(TEXT_COLUMNS)).rename_columns({v: k for k, v in TEXT_COLUMNS.items()})
    return renamed.select_columns(order)

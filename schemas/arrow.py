"""Arrow schema and `datasets.Features` derived from the pydantic models (never written by hand).

The walk covers the types our records use: str, int, float, bool, Literal (as string), Optional (a
nullable field), list[...] and nested models (as struct). Anything else is a programming error and
raises, so a new field type cannot silently become a wrong column.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
}


def _strip(annotation: Any) -> tuple[Any, bool]:
    """Unwrap Annotated/Optional; return (inner type, nullable)."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != len(get_args(annotation)):
                nullable = True
            if len(args) != 1:
                raise TypeError(f"unions other than Optional[X] have no Arrow mapping: {annotation}")
            annotation = args[0]
        else:
            return annotation, nullable


def arrow_type(annotation: Any) -> pa.DataType:
    inner, _ = _strip(annotation)
    origin = get_origin(inner)
    if origin is Literal:
        values = get_args(inner)
        if all(isinstance(v, str) for v in values):
            return pa.string()
        raise TypeError(f"only string Literals are supported: {inner}")
    if origin is list:
        (item,) = get_args(inner)
        return pa.list_(arrow_type(item))
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return pa.struct(_fields(inner))
    if inner in _SCALARS:
        return _SCALARS[inner]
    raise TypeError(f"no Arrow mapping for {inner!r}")


def _model_members(model: type[BaseModel]) -> list[tuple[str, Any, bool]]:
    """(name, annotation, nullable) for stored fields, then computed fields, in declaration order."""
    members = []
    for name, info in model.model_fields.items():
        _, nullable = _strip(info.annotation)
        members.append((name, info.annotation, nullable))
    for name, computed in model.model_computed_fields.items():
        _, nullable = _strip(computed.return_type)
        members.append((name, computed.return_type, nullable))
    return members


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    out = []
    for name, annotation, nullable in _model_members(model):
        description = None
        if name in model.model_fields:
            description = model.model_fields[name].description
        meta = {b"description": description.encode()} if description else None
        out.append(pa.field(name, arrow_type(annotation), nullable=nullable, metadata=meta))
    return out


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The parquet schema of a table whose rows are `model` instances."""
    return pa.schema(_fields(model))


def features(model: type[BaseModel]) -> Any:
    """`datasets.Features` of the same schema (what the card's `dataset_info` declares)."""
    from datasets import Features

    return Features.from_arrow_schema(arrow_schema(model))


def to_table(rows: Sequence[BaseModel], model: type[BaseModel]) -> pa.Table:
    """Rows to an Arrow table with exactly the derived schema."""
    schema = arrow_schema(model)
    data = [r.model_dump(mode="json") for r in rows]
    return pa.Table.from_pylist(data, schema=schema)


def from_table(table: pa.Table, model: type[M]) -> list[M]:
    """Arrow rows back to validated models (computed fields are dropped; they are re-derived)."""
    computed = set(model.model_computed_fields)
    out: list[M] = []
    for row in table.to_pylist():
        for name in computed:
            row.pop(name, None)
        out.append(model.model_validate(row))
    return out


def field_table(model: type[BaseModel]) -> list[tuple[str, str, str]]:
    """(name, type, description) per column, for the dataset card's field table."""
    rows = []
    for f in arrow_schema(model):
        desc = (f.metadata or {}).get(b"description", b"").decode()
        rows.append((f.name, str(f.type) + (" (nullable)" if f.nullable else ""), desc))
    return rows

"""Turns whatever JSON an endpoint returns into table columns and rows, so a screen can show an
endpoint whose exact shape is still settling (clusters, prices, costs, credits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class JsonTable:
    columns: tuple[str, ...]
    rows: tuple[JsonObject, ...]
    # The key the rows were found under ("offers", "pools", …), for a title.
    found_under: str | None = None


def records_of(payload: Any) -> tuple[list[JsonObject], str | None]:
    """The list of objects in a payload: the payload itself, or its first list-of-objects value
    (searching one level of nesting), or one object shown as a single row."""
    if isinstance(payload, list):
        return [r if isinstance(r, dict) else {"value": r} for r in payload], None
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return list(value), key
        for key, value in payload.items():
            if isinstance(value, list) and not value:
                return [], key
        if payload and all(isinstance(v, dict) for v in payload.values()):
            # {"aws": {...}, "gcp": {...}}: one row per key
            return [{"name": k, **v} for k, v in payload.items()], None
        return [payload], None
    return [{"value": payload}], None


def flatten(record: Mapping[str, Any]) -> JsonObject:
    """One level of nested objects becomes `parent.child` columns; lists stay as values."""
    flat: JsonObject = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def table_of(payload: Any, *, hide: frozenset[str] = frozenset()) -> JsonTable:
    records, found_under = records_of(payload)
    rows = [flatten(r) for r in records]
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in hide:
                columns[key] = None
    return JsonTable(tuple(columns), tuple(rows), found_under)


def numeric_series(payload: Any, preferred: tuple[str, ...]) -> list[float]:
    """The numbers to plot from a history payload: the first preferred key present in its
    records, else the first numeric key that is not a time."""
    records, _ = records_of(payload)
    if not records:
        return []
    if all(isinstance(r, dict) and set(r) == {"value"} for r in records):
        return [float(r["value"]) for r in records if isinstance(r["value"], int | float)]
    sample = flatten(records[0])
    key = next((k for k in preferred if k in sample), None)
    if key is None:
        key = next(
            (
                k
                for k, v in sample.items()
                if isinstance(v, int | float)
                and not isinstance(v, bool)
                and not k.endswith("at")
                and k not in {"t", "time", "ts", "timestamp"}
            ),
            None,
        )
    if key is None:
        return []
    values: list[float] = []
    for record in records:
        value = flatten(record).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
    return values

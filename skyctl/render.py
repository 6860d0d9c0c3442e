"""Plain-text rendering for humans: aligned tables, durations, money, timestamps, JSON records.

This is deliberately not rich: importing rich.table takes ~39 ms (best of 10, -X importtime),
about 1.5x a whole `python -c pass`, which alone would eat a third of skyctl's 5x startup
budget; aligned columns are all the queue and show pages need.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

_ELLIPSIS = "…"
EMPTY = "-"
_RECORD_CELL_LIMIT = 60


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    max_widths: Mapping[int, int] | None = None,
) -> str:
    """Left-aligned columns two spaces apart; cells longer than `max_widths[i]` are cut with "…"."""
    limits = max_widths or {}
    cells = [
        [_cut(str(cell), limits.get(index)) for index, cell in enumerate(row)]
        for row in [headers, *rows]
    ]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _cut(text: str, limit: int | None) -> str:
    text = " ".join(text.split("\n"))
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + _ELLIPSIS


def format_duration(seconds: float | None) -> str:
    """A short human duration with its two largest units: `42s`, `4m05s`, `3h07m`, `2d04h`."""
    if seconds is None:
        return EMPTY
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_money(dollars: float | int | None) -> str:
    """Dollars for display: cents from $0.01 up, four significant digits below (spot prices)."""
    if dollars is None:
        return EMPTY
    sign = "-" if dollars < 0 else ""
    amount = abs(float(dollars))
    if amount == 0 or amount >= 0.01:
        return f"{sign}${amount:,.2f}"
    return f"{sign}${amount:.4g}"


def format_timestamp(epoch: float | None, tz: dt.tzinfo | None = None) -> str:
    """A Unix time as `YYYY-MM-DD HH:MM:SS` in `tz` (the local zone when None)."""
    if epoch is None:
        return EMPTY
    moment = dt.datetime.fromtimestamp(epoch, tz=tz or dt.UTC)
    if tz is None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_scalar(value: Any) -> str:
    """One JSON value as a table cell."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={format_scalar(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(format_scalar(item) for item in value)
    return str(value)


def records_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A table of JSON objects, one column per key in first-seen order."""
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    rows = [[format_scalar(record.get(key)) for key in columns] for record in records]
    limits = dict.fromkeys(range(len(columns)), _RECORD_CELL_LIMIT)
    return format_table([column.upper() for column in columns], rows, max_widths=limits)


def key_values(pairs: Sequence[tuple[str, str]], indent: str = "") -> str:
    """`key  value` lines with the values aligned."""
    if not pairs:
        return ""
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{indent}{key.ljust(width)}  {value}".rstrip() for key, value in pairs)


def write_json(out: TextIO, value: Any) -> None:
    """Machine output: indented JSON exactly as the daemon sent it, one trailing newline."""
    json.dump(value, out, indent=2)
    out.write("\n")


def document_text(payload: Any) -> str:
    """Any JSON answer for humans: scalars as aligned pairs, each list of objects as a table.

    Used by the commands whose daemon side is still settling (prices, costs, …) so that new
    fields show up without a skyctl release.
    """
    if isinstance(payload, list):
        return _list_text(payload)
    if not isinstance(payload, Mapping):
        return format_scalar(payload)
    pairs = [
        (str(key), format_scalar(value))
        for key, value in payload.items()
        if not _is_record_list(value)
    ]
    sections = [key_values(pairs)] if pairs else []
    for key, value in payload.items():
        if _is_record_list(value):
            title = str(key).replace("_", " ").capitalize()
            sections.append(f"{title}\n{_list_text(value)}")
    return "\n\n".join(sections) if sections else "(empty)"


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


def _list_text(items: list[Any]) -> str:
    if not items:
        return "(none)"
    records = [item if isinstance(item, Mapping) else {"value": item} for item in items]
    return records_table(records)

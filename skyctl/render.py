"""Plain-text rendering for humans: aligned tables, durations, money, timestamps, JSON records.

This is deliberately not rich: importing rich.table takes ~39 ms (best of 10, -X importtime),
about 1.5x a whole `python -c pass`, which alone would eat a third of skyctl's 5x startup
budget; aligned columns are all the queue and show pages need.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO

_ELLIPSIS = "…"
EMPTY = "-"
_RECORD_CELL_LIMIT = 60
DEFAULT_WIDTH = 100
_MIN_WIDTH = 40
_GAP = 2
# A column is never cut narrower than this (or its header), so that it stays recognisable.
_MIN_COLUMN = 8


def table_width() -> int:
    """The width tables must fit: $COLUMNS, else the terminal's, else 100 (pipes, files)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return max(int(columns), _MIN_WIDTH)
    try:
        if sys.stdout.isatty():
            return max(os.get_terminal_size(sys.stdout.fileno()).columns, _MIN_WIDTH)
    except (OSError, ValueError, AttributeError):
        pass
    return DEFAULT_WIDTH


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    max_widths: Mapping[int, int] | None = None,
    width: int | None = None,
) -> str:
    """Left-aligned columns two spaces apart, fitted to `width` (default: `table_width()`).

    Cells longer than `max_widths[i]` are cut with "…"; when the table is still too wide, the
    widest columns give way first, so short ones (ids, states, prices) are never cut.
    """
    limits = max_widths or {}
    flat = [[" ".join(str(cell).split("\n")) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in flat if i < len(row)) for i in range(len(headers))]
    widths = [min(w, limits[i]) if i in limits else w for i, w in enumerate(widths)]
    _fit(widths, [len(h) for h in headers], width or table_width())
    lines = []
    for row in flat:
        padded = [_cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _fit(widths: list[int], header_widths: list[int], total: int) -> None:
    """Narrow the widest columns, one character at a time, until the row fits in `total`."""
    excess = sum(widths) + _GAP * (len(widths) - 1) - total
    while excess > 0:
        floor = [max(_MIN_COLUMN, h) for h in header_widths]
        candidates = [i for i, w in enumerate(widths) if w > floor[i]]
        if not candidates:
            return
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1


def _cut(text: str, limit: int | None) -> str:
    text = " ".join(text.split("\n"))
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + _ELLIPSIS


def format_duration(seconds: float | None) -> str:
    """A short human duration with its two largest units: `42s`, `4m05s`, `3h07m`, `2d04h`."""
    if seconds is None:
        return EMPTY
    return two_units(max(int(seconds), 0))


def two_units(total: int) -> str:
    """`total` (>= 0) seconds in their two largest units: `42s`, `4m05s`, `3h07m`, `2d04h`."""
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
    # fixed-point, never 1.5e-05: a few significant digits of a fraction of a cent
    digits = f"{amount:.6f}".rstrip("0")
    return f"{sign}${digits if digits != '0.' else '0.000001'}"


def format_dollars(dollars: float | int | None) -> str:
    """An amount of money (spend, credit) in dollars and cents; `<$0.01` for a trace."""
    if dollars is None:
        return EMPTY
    amount = float(dollars)
    if 0 < abs(amount) < 0.005:
        return "<$0.01" if amount > 0 else "-<$0.01"
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def format_bytes(nbytes: int) -> str:
    """Decimal units, as clouds bill data: `950 B`, `2.0 MB`, `12.00 GB`."""
    if nbytes < 1_000:
        return f"{nbytes} B"
    if nbytes < 1_000_000:
        return f"{nbytes / 1e3:.1f} kB"
    if nbytes < 1_000_000_000:
        return f"{nbytes / 1e6:.1f} MB"
    return f"{nbytes / 1e9:.2f} GB"


def format_relative(epoch: float | None, now: float) -> str:
    """`3h07m ago`, `in 12m00s`, `just now`."""
    if epoch is None:
        return EMPTY
    delta = now - epoch
    if abs(delta) < 1:
        return "just now"
    if delta > 0:
        return f"{format_duration(delta)} ago"
    return f"in {format_duration(-delta)}"


def parse_time(value: Any) -> float | None:
    """An API time (Unix seconds or ISO 8601 text) as Unix seconds; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    return None


def format_when(value: Any, now: float, tz: dt.tzinfo | None = None) -> str:
    """A moment as people read it: local `YYYY-MM-DD HH:MM` and how long ago (or until)."""
    epoch = parse_time(value)
    if epoch is None:
        return EMPTY if value is None else str(value)
    return f"{format_timestamp(epoch, tz)[:16]} ({format_relative(epoch, now)})"


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


# Field names whose numbers are dollars, and ones that are moments, in the daemon's answers.
_MONEY_WORDS = ("amount", "cost", "spent", "balance", "price", "total", "unused_at_expiry")
_TIME_WORDS = ("at", "since", "until", "projected_run_out", "expires", "starts")


def shown_field(key: str) -> bool:
    """People see dollars; the integer micro-dollars beside them are for machines."""
    return not key.endswith("_micros")


def human_value(key: str, value: Any, now: float) -> str:
    """A JSON value for people, read by its field name: dollars, local times, yes/no."""
    if value is None or isinstance(value, bool):
        return format_scalar(value)
    if isinstance(value, int | float):
        if key.endswith("per_hour") and "preempt" not in key:
            return f"{format_money(value)}/h"
        if key.endswith(_MONEY_WORDS):
            return format_money(value) if "price" in key else format_dollars(value)
    if key in _TIME_WORDS or key.endswith("_at"):
        return format_when(value, now)
    if isinstance(value, Mapping):
        return ", ".join(
            f"{name.replace('_', ' ')} {human_value(name, item, now)}"
            for name, item in value.items()
            if shown_field(name)
        )
    return format_scalar(value)


def field_title(key: str) -> str:
    return key.replace("_", " ").upper()


def records_table(records: Sequence[Mapping[str, Any]], now: float | None = None) -> str:
    """A table of JSON objects, one column per key in first-seen order."""
    moment = time.time() if now is None else now
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns and shown_field(key))
    rows = [[human_value(key, record.get(key), moment) for key in columns] for record in records]
    limits = dict.fromkeys(range(len(columns)), _RECORD_CELL_LIMIT)
    return format_table([field_title(column) for column in columns], rows, max_widths=limits)


def key_values(pairs: Sequence[tuple[str, str]], indent: str = "") -> str:
    """`key  value` lines with the values aligned."""
    if not pairs:
        return ""
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{indent}{key.ljust(width)}  {value}".rstrip() for key, value in pairs)


def json_flag(sub: argparse.ArgumentParser) -> None:
    """`--json`: the command prints what `write_json` writes instead of its text."""
    sub.add_argument("--json", action="store_true", help="print JSON for scripts")


def write_json(out: TextIO, value: Any) -> None:
    """Machine output: indented JSON exactly as the daemon sent it, one trailing newline."""
    json.dump(value, out, indent=2)
    out.write("\n")


def document_text(payload: Any, now: float | None = None) -> str:
    """Any JSON answer for humans: scalars as aligned pairs, each list of objects as a table.

    Used by the commands whose daemon side is still settling (prices, costs, …) so that new
    fields show up without a skyctl release.
    """
    moment = time.time() if now is None else now
    if isinstance(payload, list):
        return _list_text(payload, moment)
    if not isinstance(payload, Mapping):
        return format_scalar(payload)
    pairs = [
        (str(key).replace("_", " "), human_value(str(key), value, moment))
        for key, value in payload.items()
        if not _is_record_list(value) and shown_field(str(key))
    ]
    sections = [key_values(pairs)] if pairs else []
    for key, value in payload.items():
        if _is_record_list(value):
            title = str(key).replace("_", " ").capitalize()
            sections.append(f"{title}\n{_list_text(value, moment)}")
    return "\n\n".join(sections) if sections else "(empty)"


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


def _list_text(items: list[Any], now: float) -> str:
    if not items:
        return "(none)"
    records = [item if isinstance(item, Mapping) else {"value": item} for item in items]
    return records_table(records, now)

"""How the dashboard writes times, durations, money and arbitrary JSON values in a cell."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skyctl.render import two_units


def duration(seconds: float | None) -> str:
    """A compact duration: 45s, 12m05s, 3h07m, 2d04h; negative durations keep their sign."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    return sign + two_units(int(abs(seconds)))


def dollars(amount: float | None, *, estimated: bool = False) -> str:
    """Money for reading, not for sums: cents, or more digits for fractions of a cent."""
    if amount is None:
        return "-"
    prefix = "~" if estimated else ""
    if abs(amount) >= 0.01 or amount == 0:
        return f"{prefix}${amount:,.2f}"
    return f"{prefix}${amount:.4f}"


def clock_time(epoch: float | None, *, now: float | None = None) -> str:
    """Local time of day, with the date when it is not today."""
    if epoch is None:
        return "-"
    when = dt.datetime.fromtimestamp(epoch)
    if now is not None and dt.datetime.fromtimestamp(now).date() == when.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")


def json_cell(key: str, value: Any) -> str:
    """A JSON value from an endpoint whose exact shape the dashboard does not know in advance,
    written by what its key says it is (…_at → a date, …_micros → dollars, …_bytes → GB,
    cost/price/transfer → $)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    lowered = key.lower()
    if isinstance(value, int | float):
        if lowered.endswith("_micros"):
            return dollars(value / 1_000_000)
        if lowered.endswith("_bytes"):
            return f"{value / 1e9:.2f} GB"  # decimal gigabytes, as clouds bill egress
        if lowered.endswith("_at") or lowered in {"at", "time", "since", "until"}:
            return clock_time(float(value))
        if lowered.endswith(("_seconds", "_s")):
            return duration(float(value))
        if any(
            word in lowered
            for word in ("cost", "price", "usd", "spen", "balance", "burn", "amount", "transfer")
        ):
            return dollars(float(value))
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)
    if isinstance(value, list):
        return ", ".join(json_cell(key, item) for item in value)
    if isinstance(value, str) and _looks_like_iso_time(value):
        return clock_time(dt.datetime.fromisoformat(value).timestamp())
    if isinstance(value, dict):
        return " ".join(f"{k}={json_cell(k, v)}" for k, v in value.items())
    return str(value)


def _looks_like_iso_time(text: str) -> bool:
    if len(text) < 19 or text[4] != "-" or text[10] not in "T ":
        return False
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def heading(key: str) -> str:
    """A column heading from a JSON key: `hourly_price_micros` → `hourly price` (the unit is in
    how the cell is written)."""
    for suffix in ("_micros", "_seconds"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key.replace("_", " ").replace(".", " ")

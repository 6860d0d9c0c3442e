"""Checking accounting request values: money, dates, clouds, names; errors name the field."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from skyd.accounting.errors import AccountingInputError
from skyd.model import dollars_to_micros

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Amounts are stored as int64 micro-dollars (max ~9.2e12 dollars); more than a billion dollars
# for one lab is a typing mistake.
MAX_DOLLARS = Decimal(10**9)
# Moments a datetime can show: 0001-01-01 to 9999-12-31 (beyond that iso() overflows).
EARLIEST = -62_135_596_800.0
LATEST = 253_402_300_799.0


def money_micros(field: str, value: Any, *, allow_zero: bool = True) -> int:
    """Dollars (a JSON number or a decimal string like "1250.50") as integer micro-dollars."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AccountingInputError(
            f'{field}: expected an amount in dollars such as 1250 or "1250.50", got {value!r}',
            field,
        )
    text = str(value).strip().removeprefix("$").replace("_", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise AccountingInputError(
            f"{field}: {value!r} is not an amount in dollars (e.g. 1250 or 1250.50)", field
        ) from None
    if not amount.is_finite():
        raise AccountingInputError(f"{field}: {value!r} is not a finite amount", field)
    if amount > MAX_DOLLARS:
        raise AccountingInputError(
            f"{field}: {value!r} is more than a lab spends (up to $1,000,000,000); "
            "give dollars, e.g. 1250.50",
            field,
        )
    if amount < 0:
        raise AccountingInputError(
            f"{field}: amounts cannot be negative, got {value!r}; to lower a pool use "
            "`credits set` with the new total",
            field,
        )
    if amount == 0 and not allow_zero:
        raise AccountingInputError(f"{field}: must be more than 0, got {value!r}", field)
    return dollars_to_micros(amount)


def epoch_seconds(field: str, value: Any) -> float:
    """A moment: epoch seconds, an ISO date (midnight UTC) or an ISO date-time (UTC if naive)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _in_range(field, value, value if abs(value) <= LATEST else float("inf"))
    if isinstance(value, str):
        text = value.strip()
        try:
            return _in_range(field, value, float(text))
        except ValueError:
            pass
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            else:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=dt.UTC)
            return _in_range(field, value, moment.timestamp())
        except ValueError:
            pass
    raise AccountingInputError(
        f"{field}: {value!r} is not a date; use YYYY-MM-DD, an ISO date-time or epoch seconds",
        field,
    )


def _in_range(field: str, value: Any, moment: float) -> float:
    if not EARLIEST <= moment <= LATEST:  # also refuses NaN and infinities
        raise AccountingInputError(
            f"{field}: {value!r} is not a usable moment; give a date between the years 1 and "
            "9999 (YYYY-MM-DD, an ISO date-time or epoch seconds)",
            field,
        )
    return float(moment)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def since_moment(field: str, value: Any, now: float) -> float:
    """A report's start: a moment (see `epoch_seconds`) or a duration back from now ("7d")."""
    if isinstance(value, str) and (match := _DURATION.match(value.strip().lower())):
        back = now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return _in_range(field, value, back)
    try:
        return epoch_seconds(field, value)
    except AccountingInputError:
        raise AccountingInputError(
            f"{field}: {value!r} is neither a date (YYYY-MM-DD, ISO date-time, epoch seconds) "
            "nor a duration back from now (30m, 24h, 7d, 2w)",
            field,
        ) from None


def future_moment(field: str, value: Any, now: float) -> float:
    moment = epoch_seconds(field, value)
    if moment <= now:
        raise AccountingInputError(
            f"{field}: {value!r} is in the past ({iso(moment)}); give a later date", field
        )
    return moment


def cloud_name(field: str, value: Any, known: Sequence[str]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in known:
        raise AccountingInputError(
            f"{field}: unknown cloud {value!r}; known clouds: {', '.join(known)}", field
        )
    return value.strip().lower()


def plain_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or value.isdigit():
        raise AccountingInputError(
            f"{field}: {value!r} is not a usable name; use letters, digits, '.', '_' or '-' "
            "(up to 64, not all digits)",
            field,
        )
    return value


def optional_text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise AccountingInputError(f"{field}: expected a non-empty string or null", field)
    return value.strip()


def optional_count(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise AccountingInputError(
            f"{field}: expected a whole number from 0 to 1000000 or null, got {value!r}", field
        )
    return value


def iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="seconds")


def month_start(now: float) -> float:
    """Midnight UTC on the first day of `now`'s month: when monthly budgets reset."""
    day = dt.datetime.fromtimestamp(now, dt.UTC)
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC).timestamp()


def dollars(micros: int) -> str:
    """Micro-dollars as people read money: `$1,234.56`."""
    return f"${micros / 1_000_000:,.2f}"

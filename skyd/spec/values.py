"""Parsers for the scalar notations of a task file: amounts, sizes, durations, accelerators, infra.

Each parser takes the value as YAML produced it and returns a normalized value, or
raises `ValueProblem` whose text says what is wrong and what to write instead. The
caller adds the field path and the location in the file.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from skyd.model import Amount, dollars_to_micros
from skyd.spec.vocabulary import ALL_CLOUDS, cloud_problem

KNOWN_CLOUDS = ALL_CLOUDS
CLOUD_ALIASES = {"k8s": "kubernetes"}

DEFAULT_AUTOSTOP_MINUTES = 5


class ValueProblem(Exception):
    """A value that does not fit its field; the text is the human explanation."""


def is_number(value: object) -> bool:
    # YAML booleans are ints in Python; a task file never means 1 by `true`.
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(value: object) -> str:
    """How a bad value is quoted back to the user."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(\+?)\s*$")


def parse_cpus(value: object) -> Amount:
    """`4` (exactly four vCPUs) or `4+` (at least four)."""
    hint = "use N or N+ (e.g. 4 or 4+)"
    if is_number(value):
        number = float(value)  # type: ignore[arg-type]
        or_more = False
    elif isinstance(value, str) and (match := _AMOUNT.match(value)):
        number = float(match.group(1))
        or_more = bool(match.group(2))
    else:
        raise ValueProblem(f"{describe(value)} is not a number; {hint}")
    if not math.isfinite(number) or number <= 0:
        raise ValueProblem(f"{describe(value)} must be more than 0; {hint}")
    return Amount(number, or_more)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]i?b?)?\s*(\+?)\s*$", re.IGNORECASE)
_GIB_PER_UNIT = {"k": 2.0**-20, "m": 2.0**-10, "g": 1.0, "t": 2.0**10, "p": 2.0**20}


def _size_gib(value: object, hint: str) -> tuple[float, bool]:
    if is_number(value):
        gib, or_more = float(value), False  # type: ignore[arg-type]
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match.group(2) or "g")[0].lower()
        gib = float(match.group(1)) * _GIB_PER_UNIT[unit]
        or_more = bool(match.group(3))
    else:
        raise ValueProblem(f"{describe(value)} is not a size; {hint}")
    if not math.isfinite(gib) or gib <= 0:
        raise ValueProblem(f"{describe(value)} must be more than 0; {hint}")
    return gib, or_more


def parse_memory(value: object) -> Amount:
    """`32` GiB exactly, `32+` at least, or with a unit: `64GB`, `1024MB+` (binary units)."""
    gib, or_more = _size_gib(value, "use N, N+ or N with a unit (e.g. 32, 32+, 64GB)")
    return Amount(gib, or_more)


def parse_disk_size(value: object) -> int:
    """Whole GiB: `256` or `256GB` (other units are rounded down to whole GiB)."""
    hint = "use a whole number of GB (e.g. 256 or 256GB)"
    gib, or_more = _size_gib(value, hint)
    if or_more:
        raise ValueProblem(f"{describe(value)}: a disk has one size, not a minimum; {hint}")
    whole = math.floor(gib)
    if whole < 1:
        raise ValueProblem(f"{describe(value)} is less than 1 GB; {hint}")
    return whole


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([wdhms])", re.IGNORECASE)
_SECONDS_PER_UNIT = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}


def parse_duration_text(text: str) -> float | None:
    """Seconds in `36h`, `90m`, `2d`, `1h30m`, `1.5h`, `45s`, `1w`; None if it is not one."""
    compact = "".join(text.split())
    if not compact:
        return None
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2).lower()]
        position = match.end()
    if position != len(compact):
        return None
    return total


DURATION_HINT = "e.g. 36h, 90m, 2d or 1h30m"


def parse_duration(value: object, *, bare_number_unit: float | None, hint: str) -> float:
    """A positive duration in seconds. A bare number is multiplied by `bare_number_unit`
    (seconds per unit), or refused when that is None because it would be ambiguous."""
    if is_number(value):
        if bare_number_unit is None:
            raise ValueProblem(f"{describe(value)} has no unit; {hint}")
        seconds = float(value) * bare_number_unit  # type: ignore[arg-type]
    elif isinstance(value, str) and (parsed := parse_duration_text(value)) is not None:
        seconds = parsed
    else:
        raise ValueProblem(f"{describe(value)} is not a duration; {hint}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueProblem(f"{describe(value)} must be longer than 0; {hint}")
    return seconds


def parse_instant(value: object, hint: str) -> float:
    """An ISO-8601 date and time with a timezone, as seconds since the epoch."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueProblem(
                f"{describe(value)} is neither a duration nor a time; {hint}"
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueProblem(
                f"'{value.isoformat()}' has no timezone; add one "
                f"(e.g. {value.isoformat()}Z or {value.isoformat()}+02:00)"
            )
        return value.timestamp()
    if isinstance(value, dt.date):
        raise ValueProblem(
            f"'{value.isoformat()}' is a date without a time; "
            f"give a time and timezone (e.g. {value.isoformat()}T18:00:00Z)"
        )
    raise ValueProblem(f"{describe(value)} is neither a duration nor a time; {hint}")


_ACCELERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
ACCELERATOR_HINT = "use NAME or NAME:COUNT (e.g. V100, A100:8)"


def _accelerator_count(name_text: str, count: object) -> int:
    whole_hint = f"skyd allocates whole accelerators; use a count of 1 or more (e.g. {name_text}:1)"
    if isinstance(count, str):
        text = count.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueProblem(
                f"count {text!r} of {name_text} is not a number; {ACCELERATOR_HINT}"
            ) from None
    elif is_number(count):
        number = Decimal(str(count))
    else:
        raise ValueProblem(f"count {describe(count)} of {name_text} is not a number")
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueProblem(
            f"{name_text}:{count} asks for a fraction of an accelerator; {whole_hint}"
        )
    if number < 1:
        raise ValueProblem(f"{name_text}:{count} asks for no accelerator; {whole_hint}")
    return int(number)


def _accelerator_name(name: str, written: object) -> str:
    name = name.strip()
    if not _ACCELERATOR_NAME.match(name):
        raise ValueProblem(f"{describe(written)} is not an accelerator; {ACCELERATOR_HINT}")
    return name


def _one_accelerator(item: object) -> tuple[str, int]:
    if not isinstance(item, str):
        raise ValueProblem(f"{describe(item)} is not an accelerator; {ACCELERATOR_HINT}")
    name, sep, count = item.partition(":")
    name = _accelerator_name(name, item)
    return (name, _accelerator_count(name, count) if sep else 1)


def parse_accelerators(value: object) -> tuple[tuple[str, int], ...]:
    """Any-of set of (name, count) from `V100`, `A100:8`, a list, or a mapping.

    The mapping form is SkyPilot's `{A100: 8, H100: 8}`, and also its flow-set form
    `{A100:1, V100:1}`, which YAML reads as keys without values. Names are kept as
    written; order is kept and repeats are dropped.
    """
    pairs: list[tuple[str, int]] = []
    if isinstance(value, str):
        pairs.append(_one_accelerator(value))
    elif isinstance(value, list):
        if not value:
            raise ValueProblem(f"the list is empty; {ACCELERATOR_HINT}, or leave the field out")
        pairs.extend(_one_accelerator(item) for item in value)
    elif isinstance(value, Mapping):
        if not value:
            raise ValueProblem(f"the mapping is empty; {ACCELERATOR_HINT}, or leave the field out")
        for key, count in value.items():
            if not isinstance(key, str):
                raise ValueProblem(f"{describe(key)} is not an accelerator; {ACCELERATOR_HINT}")
            if count is None:
                pairs.append(_one_accelerator(key))
            elif ":" in key:
                raise ValueProblem(
                    f"{key!r} has a count both in its name and as its value ({describe(count)}); "
                    f"write either {key.partition(':')[0]}: {describe(count)} or {key}"
                )
            else:
                name = _accelerator_name(key, key)
                pairs.append((name, _accelerator_count(name, count)))
    else:
        raise ValueProblem(
            f"{describe(value)} is not an accelerator; {ACCELERATOR_HINT}, "
            "a list of those, or a mapping NAME: COUNT"
        )
    return tuple(dict.fromkeys(pairs))


def parse_cloud(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueProblem(f"{describe(value)} is not a cloud; write a name such as aws or gcp")
    name = value.strip().lower()
    problem = cloud_problem(name)
    if problem is not None:
        raise ValueProblem(problem)
    return CLOUD_ALIASES.get(name, name)


def parse_infra(value: object) -> tuple[str | None, str | None, str | None]:
    """`cloud[/region[/zone]]` → (cloud, region, zone); `*` in any part means any."""
    hint = "use CLOUD, CLOUD/REGION or CLOUD/REGION/ZONE (e.g. aws/us-east-1); * means any"
    if not isinstance(value, str) or not value.strip():
        raise ValueProblem(f"{describe(value)} is not an infra; {hint}")
    parts = [part.strip() for part in value.strip().split("/")]
    if len(parts) > 3 or any(not part for part in parts):
        raise ValueProblem(f"{describe(value)} is not an infra; {hint}")
    cloud, region, zone = [*parts, None, None][:3]
    if cloud == "*":
        cloud = None
    elif cloud is not None:
        try:
            cloud = parse_cloud(cloud)
        except ValueProblem as problem:
            if len(parts) == 1:
                raise
            raise ValueProblem(f"{describe(value)}: {problem}") from None
    return (cloud, None if region == "*" else region, None if zone == "*" else zone)


def parse_dollars_per_hour(value: object, raw_text: str | None) -> int:
    """A positive price in dollars per hour, as exact integer micro-dollars.

    `raw_text` is the number as written in the file, so `0.1` stays exactly 100000.
    """
    hint = "use a price in dollars per hour (e.g. 2.5)"
    if not is_number(value):
        raise ValueProblem(f"{describe(value)} is not a number; {hint}")
    try:
        exact = Decimal(raw_text) if raw_text is not None else Decimal(str(value))
    except InvalidOperation:
        exact = Decimal(str(value))
    if not exact.is_finite() or exact <= 0:
        raise ValueProblem(f"{describe(value)} must be more than 0; {hint}")
    micros = dollars_to_micros(exact)
    if micros < 1:
        raise ValueProblem(f"{describe(value)} is below one micro-dollar; {hint}")
    return micros


_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def parse_countries(value: object) -> tuple[str, ...]:
    """ISO 3166-1 alpha-2 codes, upper-cased: `[US, DE]` or a single `US`."""
    hint = "use two-letter country codes (e.g. [US, DE])"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueProblem(f"{describe(value)} is not a list of countries; {hint}")
    codes: list[str] = []
    for item in items:
        if not isinstance(item, str) or not _COUNTRY.match(item.strip()):
            raise ValueProblem(f"{describe(item)} is not a country code; {hint}")
        codes.append(item.strip().upper())
    return tuple(dict.fromkeys(codes))


def parse_autostop_minutes(value: object) -> int:
    """Idle minutes from `10` (minutes) or `10m`, `2h`, `1d`, `1w`."""
    hint = "use minutes (e.g. 10) or a duration (e.g. 30m, 2h)"
    seconds = parse_duration(value, bare_number_unit=60.0, hint=hint)
    minutes = seconds / 60.0
    if minutes != math.floor(minutes):
        raise ValueProblem(f"{describe(value)} is not a whole number of minutes; {hint}")
    return int(minutes)


def parse_strategy_name(value: object, allowed: tuple[str, ...]) -> str:
    names = ", ".join(allowed)
    if not isinstance(value, str) or value.strip().upper() not in allowed:
        raise ValueProblem(f"{describe(value)} is not a recovery strategy; use one of: {names}")
    return value.strip().upper()

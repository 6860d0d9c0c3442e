"""Parses and validates catalog CSV files (offers and the region table) into plain records."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Generic, TypeVar

from skyd.errors import CatalogError
from skyd.model import Offer, dollars_to_micros

OFFER_COLUMNS = (
    "cloud",
    "instance_type",
    "accelerator_name",
    "accelerator_count",
    "vcpus",
    "memory_gib",
    "price",
    "spot_price",
    "region",
    "zone",
)
REGION_COLUMNS = ("cloud", "region", "country", "continent")
CONTINENTS = frozenset({"AF", "AN", "AS", "EU", "NA", "OC", "SA"})

_COUNTRY = re.compile(r"[A-Z]{2}")
# '/' separates the parts of Offer.key, so it cannot appear inside one.
_NAME = re.compile(r"[^/\s]+")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RegionLocation:
    """Where a cloud region is: ISO-3166 alpha-2 country and continent code."""

    country: str
    continent: str


class _FieldError(ValueError):
    """A bad value in one field; the reader adds file, line and column."""


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise _FieldError("must be non-empty, without '/' or whitespace")
    return value


def _zone(value: str) -> str:
    if value and not _NAME.fullmatch(value):
        raise _FieldError("must be empty (no zones) or a zone name without '/' or whitespace")
    return value


def _size(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _FieldError("is not a number; write e.g. 8 or 15.25") from None
    if not math.isfinite(number) or number < 0:
        raise _FieldError("must be a finite number ≥ 0")
    return number


def _count(value: str) -> int:
    if not value.isdigit():
        raise _FieldError("is not a whole number; write e.g. 1, 4 or 8")
    return int(value)


def _price(value: str) -> int | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _FieldError(
            "is not a decimal price; write dollars per hour like 0.526, or leave it empty"
        ) from None
    if not amount.is_finite() or amount <= 0:
        raise _FieldError("must be a price > 0 in dollars per hour, or empty (not sold that way)")
    return dollars_to_micros(amount)


def _open_rows(
    path: Path, required: tuple[str, ...]
) -> tuple[Iterator[tuple[int, list[str]]], list[int]]:
    """The (line number, data row) pairs of `path` and the positions of `required` columns."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog file: {exc.strerror}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CatalogError(f"{path} line 1: malformed CSV header: {exc}") from None
    if not header:
        raise CatalogError(f"{path}: empty file; expected a header line: {','.join(required)}")
    missing = [name for name in required if name not in header]
    if missing:
        raise CatalogError(
            f"{path} line 1: missing column(s) {', '.join(missing)}; "
            f"the header must contain {','.join(required)}"
        )
    positions = [header.index(name) for name in required]
    width = len(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        line = 1
        try:
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise CatalogError(
                        f"{path} line {line}: {len(row)} fields where the header has {width}; "
                        "the row is truncated or has stray commas"
                    )
                yield line, row
        except csv.Error as exc:
            raise CatalogError(f"{path} line {line + 1}: malformed CSV: {exc}") from None

    return rows(), positions


class _Column(Generic[T]):
    """One column's parser; repeated values (prices, sizes, regions) are parsed once."""

    __slots__ = ("cache", "index", "name", "parse", "path")

    def __init__(self, path: Path, index: int, name: str, parse: Callable[[str], T]) -> None:
        self.path = path
        self.index = index
        self.name = name
        self.parse = parse
        self.cache: dict[str, T] = {}

    def __call__(self, line: int, row: list[str]) -> T:
        value = row[self.index]
        try:
            return self.cache[value]
        except KeyError:
            pass
        try:
            result = self.parse(value)
        except _FieldError as exc:
            raise CatalogError(
                f"{self.path} line {line}, column {self.index + 1} ({self.name}): {value!r} {exc}"
            ) from None
        self.cache[value] = result
        return result


def read_offers(path: Path, cloud: str) -> list[Offer]:
    """Every offer in one cloud's catalog file; raises CatalogError on the first bad value."""
    rows, cols = _open_rows(path, OFFER_COLUMNS)
    c_cloud, c_type, c_acc, c_count, c_cpu, c_mem, c_price, c_spot, c_region, c_zone = cols
    instance_type = _Column(path, c_type, "instance_type", _name)
    count_of = _Column(path, c_count, "accelerator_count", _count)
    vcpus = _Column(path, c_cpu, "vcpus", _size)
    memory = _Column(path, c_mem, "memory_gib", _size)
    price_of = _Column(path, c_price, "price", _price)
    spot_of = _Column(path, c_spot, "spot_price", _price)
    region = _Column(path, c_region, "region", _name)
    zone = _Column(path, c_zone, "zone", _zone)
    offers: list[Offer] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if row[c_cloud] != cloud:
            raise CatalogError(
                f"{path} line {line}, column {c_cloud + 1} (cloud): {row[c_cloud]!r} in the "
                f"catalog file of {cloud!r}; each <cloud>.csv holds only that cloud's offers"
            )
        accelerator = row[c_acc]
        if accelerator:
            count = count_of(line, row)
            if count == 0:
                raise CatalogError(
                    f"{path} line {line}, column {c_count + 1} (accelerator_count): '0' for "
                    f"accelerator {accelerator!r}; give how many it has (≥ 1)"
                )
        elif row[c_count] not in ("", "0"):
            raise CatalogError(
                f"{path} line {line}, column {c_count + 1} (accelerator_count): "
                f"{row[c_count]!r} without an accelerator_name; name the accelerator or "
                "leave the count empty"
            )
        else:
            count = 0
        price = price_of(line, row)
        spot = spot_of(line, row)
        if price is None and spot is None:
            raise CatalogError(
                f"{path} line {line}, columns {c_price + 1}/{c_spot + 1} (price/spot_price): "
                "both empty; an offering must be sold on demand, as spot, or both — "
                "give a price or drop the row"
            )
        offer = Offer(
            cloud,
            region(line, row),
            zone(line, row),
            instance_type(line, row),
            accelerator,
            count,
            vcpus(line, row),
            memory(line, row),
            price,
            spot,
        )
        key = offer.key
        first = seen.setdefault(key, line)
        if first != line:
            raise CatalogError(
                f"{path} line {line}: offering {key} already listed on line {first}; "
                "keep one row per (instance_type, region, zone)"
            )
        offers.append(offer)
    return offers


def read_regions(path: Path) -> dict[tuple[str, str], RegionLocation]:
    """(cloud, region) → location, from a regions.csv file."""
    rows, (c_cloud, c_region, c_country, c_continent) = _open_rows(path, REGION_COLUMNS)
    table: dict[tuple[str, str], RegionLocation] = {}
    for line, row in rows:
        key = (row[c_cloud], row[c_region])
        country, continent = row[c_country], row[c_continent]
        if not _COUNTRY.fullmatch(country):
            raise CatalogError(
                f"{path} line {line}, column {c_country + 1} (country): {country!r} is not an "
                "ISO-3166 alpha-2 code; write two capital letters like US or DE"
            )
        if continent not in CONTINENTS:
            raise CatalogError(
                f"{path} line {line}, column {c_continent + 1} (continent): {continent!r}; "
                f"use one of {', '.join(sorted(CONTINENTS))}"
            )
        if key in table:
            raise CatalogError(f"{path} line {line}: region {key[0]}/{key[1]} listed twice")
        table[key] = RegionLocation(country, continent)
    return table

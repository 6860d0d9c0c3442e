"""Write a fetched catalog so that only a complete, valid file ever replaces the old one."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.rows import CatalogRow
from skyd.catalog.reader import OFFER_COLUMNS, read_offers
from skyd.errors import CatalogError


def replace_catalog(rows: Sequence[CatalogRow], path: Path, cloud: str) -> int:
    """Write `rows` to a temporary file next to `path`, validate it, then rename it over `path`.

    Returns the number of rows written. On any failure the temporary file is
    removed and `path` is untouched.
    """
    if not rows:
        raise CatalogFetchError(
            f"the {cloud} pricing APIs returned no priced offerings; "
            f"refusing to replace {path} with an empty catalog"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so the final rename is atomic on POSIX.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=OFFER_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in sorted(rows, key=CatalogRow.sort_key):
                writer.writerow(row.as_record())
            out.flush()
            os.fsync(out.fileno())
        count = validate_catalog_file(tmp, cloud)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return count


def validate_catalog_file(path: Path, cloud: str) -> int:
    """Check a catalog CSV row by row; return its row count or raise CatalogFetchError."""
    with path.open(newline="", encoding="utf-8") as src:
        reader = csv.DictReader(src)
        if tuple(reader.fieldnames or ()) != OFFER_COLUMNS:
            raise CatalogFetchError(
                f"{path}: header is {reader.fieldnames}, expected {list(OFFER_COLUMNS)}"
            )
        count = 0
        for count, record in enumerate(reader, start=1):
            _validate_record(record, f"{path} line {count + 1}", cloud)
    if count == 0:
        raise CatalogFetchError(f"{path}: no rows")
    # The same reader the daemon uses: whatever it would reject must not be installed.
    try:
        read_offers(path, cloud)
    except CatalogError as exc:
        raise CatalogFetchError(f"fetched catalog does not load: {exc}") from None
    return count


def _validate_record(record: dict[str, str], where: str, cloud: str) -> None:
    if record["cloud"] != cloud:
        raise CatalogFetchError(f"{where}: cloud is {record['cloud']!r}, expected {cloud!r}")
    for column in ("instance_type", "region"):
        if not record[column]:
            raise CatalogFetchError(f"{where}: {column} is empty")
    count = record["accelerator_count"]
    if count and (not count.isdigit() or int(count) <= 0):
        raise CatalogFetchError(f"{where}: accelerator_count {count!r} is not a positive integer")
    if bool(count) != bool(record["accelerator_name"]):
        raise CatalogFetchError(f"{where}: accelerator_name and accelerator_count must go together")
    for column in ("vcpus", "memory_gib"):
        _positive_decimal(record[column], column, where)
    if not record["price"] and not record["spot_price"]:
        raise CatalogFetchError(f"{where}: neither price nor spot_price is set")
    for column in ("price", "spot_price"):
        if record[column]:
            _positive_decimal(record[column], column, where)


def _positive_decimal(text: str, column: str, where: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CatalogFetchError(f"{where}: {column} {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise CatalogFetchError(f"{where}: {column} {text!r} must be a positive number")
    return value


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; without it a crash can bring the old file back.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

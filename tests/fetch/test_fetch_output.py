"""Writing a fetched catalog: validated, sorted, atomic, and never half-replacing a good one."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from skyd.catalog.fetch import CatalogFetchError
from skyd.catalog.fetch.output import replace_catalog
from skyd.catalog.fetch.rows import CatalogRow, decimal_text
from skyd.catalog.reader import OFFER_COLUMNS

GOOD = CatalogRow(
    cloud="aws",
    instance_type="p3.2xlarge",
    accelerator_name="V100",
    accelerator_count=1,
    vcpus=Decimal(8),
    memory_gib=Decimal("61.0"),
    price=Decimal("3.0600000000"),
    spot_price=Decimal("0.918000"),
    region="us-east-1",
    zone="use1-az6",
)
CPU = replace(
    GOOD,
    instance_type="m5.large",
    accelerator_name="",
    accelerator_count=None,
    vcpus=Decimal(2),
    memory_gib=Decimal("0.5"),
    price=Decimal("0.096"),
    spot_price=None,
)


def test_decimal_text_is_plain_and_trimmed() -> None:
    assert decimal_text(Decimal("0.0960000000")) == "0.096"
    assert decimal_text(Decimal("100")) == "100"
    assert decimal_text(Decimal("1E+2")) == "100"
    assert decimal_text(Decimal("0.00001")) == "0.00001"
    assert decimal_text(None) == ""


def test_rows_are_written_sorted_with_the_shared_header(tmp_path: Path) -> None:
    path = tmp_path / "aws.csv"
    assert replace_catalog([GOOD, CPU], path, "aws") == 2
    lines = path.read_bytes().decode().split("\n")
    assert lines[0] == ",".join(OFFER_COLUMNS)
    assert lines[1] == "aws,m5.large,,,2,0.5,0.096,,us-east-1,use1-az6"
    assert lines[2] == "aws,p3.2xlarge,V100,1,8,61,3.06,0.918,us-east-1,use1-az6"
    assert lines[3] == ""
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (replace(GOOD, price=Decimal(0)), "price '0' must be a positive number"),
        (replace(GOOD, price=None, spot_price=None), "neither price nor spot_price"),
        (replace(GOOD, accelerator_count=None), "must go together"),
        (replace(GOOD, region=""), "region is empty"),
        (replace(GOOD, cloud="gcp"), "expected 'aws'"),
        (replace(GOOD, instance_type="p3 2xlarge"), "does not load"),
        (GOOD, "does not load"),  # a duplicate offering: the daemon's reader rejects it
    ],
)
def test_invalid_output_never_replaces_the_old_file(
    tmp_path: Path, bad: CatalogRow, message: str
) -> None:
    path = tmp_path / "aws.csv"
    path.write_bytes(b"old,good\r\n")
    with pytest.raises(CatalogFetchError, match=message):
        replace_catalog([GOOD, bad], path, "aws")
    assert path.read_bytes() == b"old,good\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["aws.csv"]


def test_no_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogFetchError, match="empty catalog"):
        replace_catalog([], tmp_path / "azure.csv", "azure")
    assert list(tmp_path.iterdir()) == []

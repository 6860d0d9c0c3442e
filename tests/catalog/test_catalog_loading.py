"""Loading catalog files: locations, cloud selection, and clear errors for bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import skyd
from skyd.catalog import CATALOG_DIR_ENV, Catalog, default_catalog_dir
from skyd.errors import CatalogError
from skyd.model import OfferFilter

SHIPPED = Path(skyd.__file__).resolve().parents[1] / "catalogs"
HEADER = (
    "cloud,instance_type,accelerator_name,accelerator_count,"
    "vcpus,memory_gib,price,spot_price,region,zone\n"
)
GOOD = (
    "aws,g4dn.xlarge,T4,1,4,16,0.526,0.186000,us-east-1,use1-az2\n"
    "aws,m5.large,,,2,8,0.096,0.035,us-east-1,use1-az2\n"
)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_location_is_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOG_DIR_ENV, raising=False)
    assert default_catalog_dir() == SHIPPED


def test_env_variable_overrides_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "aws.csv", HEADER + GOOD)
    monkeypatch.setenv(CATALOG_DIR_ENV, str(tmp_path))
    catalog = Catalog.load()
    assert catalog.clouds == ["aws"] and len(catalog.offers) == 2
    assert catalog.source == tmp_path


def test_env_variable_pointing_nowhere_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CATALOG_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(CatalogError, match=f"{CATALOG_DIR_ENV}.*not a directory"):
        Catalog.load()


def test_load_selected_clouds_only() -> None:
    catalog = Catalog.load(SHIPPED, clouds=["GCP", "lambda"])
    assert catalog.clouds == ["gcp", "lambda"]
    assert {o.cloud for o in catalog.offers} == {"gcp", "lambda"}


def test_unknown_cloud_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"no catalog for oci .*have: aws, azure, gcp, lambda"):
        Catalog.load(SHIPPED, clouds=["aws", "oci"])


def test_directory_without_regions_uses_shipped_region_table(tmp_path: Path) -> None:
    catalog = Catalog.load(write(tmp_path, "aws.csv", HEADER + GOOD).parent)
    assert catalog.country_of("aws", "us-east-1") == "US"
    only_us = catalog.query(OfferFilter(countries=("US",)))
    assert len(only_us) == 4


def test_extra_columns_are_ignored_and_prices_exact(tmp_path: Path) -> None:
    text = HEADER.rstrip("\n") + ",generation\n" + "aws,m5.large,,,2,8,0.0960001,,us-east-1,a,V2\n"
    (offer,) = Catalog.load(write(tmp_path, "aws.csv", text).parent).offers
    assert offer.price_micros == 96_000  # rounded to the micro-dollar, never a float
    assert offer.spot_price_micros is None
    assert offer.accelerator_name == "" and offer.accelerator_count == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # truncated row (file cut short mid-line)
        (
            GOOD + "aws,p3.2xlarge,V100,1,8,61,3.06",
            r"aws\.csv line 4: 7 fields where the header has 10",
        ),
        # bad number
        (
            GOOD + "aws,p3.2xlarge,V100,1,8,61,3.O6,,us-east-1,use1-az2\n",
            r"aws\.csv line 4, column 7 \(price\): '3\.O6' is not a decimal price",
        ),
        (
            GOOD + "aws,p3.2xlarge,V100,1,eight,61,3.06,,us-east-1,use1-az2\n",
            r"line 4, column 5 \(vcpus\): 'eight' is not a number",
        ),
        (
            GOOD + "aws,p3.2xlarge,V100,1.5,8,61,3.06,,us-east-1,use1-az2\n",
            r"line 4, column 4 \(accelerator_count\): '1\.5' is not a whole number",
        ),
        (
            GOOD + "aws,p3.2xlarge,V100,1,8,nan,3.06,,us-east-1,use1-az2\n",
            r"column 6 \(memory_gib\): 'nan' must be a finite number",
        ),
        (
            GOOD + "aws,p3.2xlarge,V100,1,8,61,0,,us-east-1,use1-az2\n",
            r"column 7 \(price\): '0' must be a price > 0",
        ),
        (
            GOOD + "aws,p3.2xlarge,V100,1,8,61,,,us-east-1,use1-az2\n",
            r"line 4, columns 7/8 \(price/spot_price\): both empty",
        ),
        (
            GOOD + "aws,p3.2xlarge,,2,8,61,3.06,,us-east-1,use1-az2\n",
            r"column 4 \(accelerator_count\): '2' without an accelerator_name",
        ),
        (
            GOOD + "aws,,V100,1,8,61,3.06,,us-east-1,use1-az2\n",
            r"column 2 \(instance_type\): '' must be non-empty",
        ),
        (
            GOOD + "gcp,p3.2xlarge,V100,1,8,61,3.06,,us-east-1,use1-az2\n",
            r"column 1 \(cloud\): 'gcp' in the catalog file of 'aws'",
        ),
        (
            GOOD + "aws,m5.large,,,2,8,0.096,0.035,us-east-1,use1-az2\n",
            r"line 4: offering aws/us-east-1/use1-az2/m5\.large already listed on line 3",
        ),
        (
            GOOD + 'aws,"m5.large,,,2,8,0.096,0.035,us-east-1,use1-az3\n',
            r"aws\.csv line \d+: (malformed CSV|1 fields)",
        ),
    ],
)
def test_corrupt_files_raise_catalog_error_naming_the_spot(
    tmp_path: Path, body: str, expected: str
) -> None:
    write(tmp_path, "aws.csv", HEADER + body)
    with pytest.raises(CatalogError, match=expected):
        Catalog.load(tmp_path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    header = HEADER.replace(",spot_price", "")
    write(tmp_path, "aws.csv", header + "aws,m5.large,,,2,8,0.096,us-east-1,use1-az2\n")
    with pytest.raises(CatalogError, match=r"aws\.csv line 1: missing column\(s\) spot_price"):
        Catalog.load(tmp_path)


def test_empty_and_non_utf8_files(tmp_path: Path) -> None:
    write(tmp_path / "a", "aws.csv", "")
    with pytest.raises(CatalogError, match="empty file"):
        Catalog.load(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "aws.csv").write_bytes(HEADER.encode() + b"aws,m5.l\xffarge\n")
    with pytest.raises(CatalogError, match="not UTF-8"):
        Catalog.load(tmp_path / "b")


def test_empty_directory_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog files"):
        Catalog.load(tmp_path)
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog.load(tmp_path / "nope")


def test_one_corrupt_cloud_loads_nothing(tmp_path: Path) -> None:
    for name in ("aws.csv", "gcp.csv", "regions.csv"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    good = Catalog.load(tmp_path)
    assert good.clouds == ["aws", "gcp"]
    lines = (tmp_path / "gcp.csv").read_text().splitlines(keepends=True)
    (tmp_path / "gcp.csv").write_text("".join(lines[:-1]) + lines[-1][:20])
    with pytest.raises(CatalogError, match=rf"gcp\.csv line {len(lines)}:"):
        Catalog.load(tmp_path)
    # The good catalog object is untouched by the failed load.
    assert len(good.offers) == 3683 + 1465


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("aws,us-east-1,USA,NA\n", r"column 3 \(country\): 'USA' is not an ISO-3166"),
        ("aws,us-east-1,US,America\n", r"column 4 \(continent\): 'America'"),
        (
            "aws,us-east-1,US,NA\naws,us-east-1,US,NA\n",
            r"line 3: region aws/us-east-1 listed twice",
        ),
    ],
)
def test_bad_region_table(tmp_path: Path, row: str, expected: str) -> None:
    write(tmp_path, "aws.csv", HEADER + GOOD)
    write(tmp_path, "regions.csv", "cloud,region,country,continent\n" + row)
    with pytest.raises(CatalogError, match=expected):
        Catalog.load(tmp_path)


def test_env_directory_without_regions_uses_shipped_region_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "aws.csv", HEADER + GOOD)
    monkeypatch.setenv(CATALOG_DIR_ENV, str(tmp_path))
    assert Catalog.load().continent_of("aws", "us-east-1") == "NA"

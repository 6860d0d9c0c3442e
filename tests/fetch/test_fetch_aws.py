"""`fetch_catalog("aws")` end to end: moto's EC2 server plus the fake Price List."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from skyd.catalog import Catalog
from skyd.catalog.fetch import CatalogFetchError, FetchEndpoints, RetryPolicy, fetch_catalog
from skyd.catalog.fetch.aws import accelerator_of, latest_spot_prices
from skyd.catalog.fetch.aws_price_list import linux_on_demand_prices
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2, MotoServerThread
from skyd.testing.pricing_servers import AwsPriceListServer, FaultPlan, InstantClock

FIXTURES = Path(__file__).parents[1] / "fixtures" / "pricing"


def offer_file() -> dict[str, Any]:
    offer: dict[str, Any] = json.loads((FIXTURES / "aws_price_list_us-east-1.json").read_text())
    return offer


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServerThread]:
    server = MotoServerThread()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def moto_url(moto_server: MotoServerThread) -> str:
    return moto_server.url


@pytest.fixture(autouse=True)
def dummy_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Never pick up a real ~/.aws of whoever runs the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def endpoints(moto_url: str, price_list: AwsPriceListServer) -> FetchEndpoints:
    return FetchEndpoints(
        aws_ec2_url=moto_url, aws_price_list_url=price_list.url, aws_regions=("us-east-1",)
    )


def rows_of(path: Path, instance_type: str) -> dict[str, dict[str, str]]:
    with path.open(newline="") as src:
        return {r["zone"]: r for r in csv.DictReader(src) if r["instance_type"] == instance_type}


async def test_fetch_joins_types_zones_spot_and_price_list(moto_url: str, tmp_path: Path) -> None:
    out = tmp_path / "catalogs"
    # One full run (moto answers slowly), so it also covers a throttled price list.
    faults = FaultPlan()
    faults.throttle(times=1, status=503, retry_after="4")
    clock = InstantClock()
    async with AwsPriceListServer({"us-east-1": offer_file()}, faults=faults) as price_list:
        path = await fetch_catalog("aws", out, endpoints(moto_url, price_list), clock=clock)
    assert path == out / "aws.csv"
    assert len(clock.sleeps) == 1 and 4.0 <= clock.sleeps[0] <= 5.0
    assert len(price_list.requests) == 2

    g5 = rows_of(path, "g5.xlarge")
    # Zones are AZ IDs from DescribeInstanceTypeOfferings(availability-zone-id).
    assert set(g5) == {"use1-az1", "use1-az2", "use1-az4", "use1-az5", "use1-az6"}
    row = g5["use1-az1"]
    # The Linux / shared / no-software SKU, not Windows, dedicated or SQL.
    assert row["price"] == "1.006"
    assert (row["accelerator_name"], row["accelerator_count"]) == ("A10G", "1")
    assert (row["vcpus"], row["memory_gib"], row["region"]) == ("4", "16", "us-east-1")
    # moto quotes every spot price as 0.00001.
    assert row["spot_price"] == "0.00001"

    assert rows_of(path, "m5.large")["use1-az2"]["price"] == "0.096"
    # Types missing from the price list are still offered as spot.
    t3_large = rows_of(path, "t3.large")
    assert t3_large and all(r["price"] == "" and r["spot_price"] for r in t3_large.values())
    # A fraction of a GPU (g6f) has no whole-number count: left out.
    assert not rows_of(path, "g6f.large")

    catalog = Catalog.load(out, clouds=["aws"])
    assert {o.zone for o in catalog.offers if o.instance_type == "g5.xlarge"} == set(g5)


async def test_price_list_failure_keeps_the_old_catalog(moto_url: str, tmp_path: Path) -> None:
    old = tmp_path / "aws.csv"
    old.write_bytes(b"an old catalog that must survive\n")
    faults = FaultPlan()
    faults.server_error(status=500)
    async with AwsPriceListServer({"us-east-1": offer_file()}, faults=faults) as price_list:
        with pytest.raises(CatalogFetchError, match=r"us-east-1/index\.json.*HTTP 500"):
            await fetch_catalog(
                "aws",
                tmp_path,
                endpoints(moto_url, price_list),
                clock=InstantClock(),
                retry=RetryPolicy(max_attempts=2),
            )
    assert old.read_bytes() == b"an old catalog that must survive\n"
    assert [p.name for p in tmp_path.iterdir()] == ["aws.csv"]


async def test_unknown_region_fails_with_the_region_named(moto_url: str, tmp_path: Path) -> None:
    async with AwsPriceListServer({}) as price_list:
        with pytest.raises(CatalogFetchError, match=r"us-east-1.*HTTP 403"):
            await fetch_catalog(
                "aws", tmp_path, endpoints(moto_url, price_list), clock=InstantClock()
            )
    assert list(tmp_path.iterdir()) == []


async def test_ec2_refusal_names_the_call_and_keeps_the_old_catalog(
    moto_server: MotoServerThread, tmp_path: Path
) -> None:
    old = tmp_path / "aws.csv"
    old.write_bytes(b"kept\n")
    ec2 = MotoEc2(moto_server)
    await ec2.start()
    ec2.add_fault(
        Ec2Fault(
            "DescribeInstanceTypeOfferings",
            code="UnauthorizedOperation",
            status=403,
            message="You are not authorized to perform this operation.",
        )
    )
    try:
        async with AwsPriceListServer({"us-east-1": offer_file()}) as price_list:
            with pytest.raises(CatalogFetchError, match=r"region us-east-1: UnauthorizedOperation"):
                await fetch_catalog(
                    "aws", tmp_path, endpoints(ec2.endpoint_url, price_list), clock=InstantClock()
                )
    finally:
        await ec2.stop()
    # Authorization errors are final: botocore must not have retried them.
    assert ec2.calls["DescribeInstanceTypeOfferings"] == 1
    assert old.read_bytes() == b"kept\n"
    assert [p.name for p in tmp_path.iterdir()] == ["aws.csv"]


def test_price_list_keeps_only_plain_linux_on_demand() -> None:
    prices = linux_on_demand_prices(offer_file(), "fixture")
    assert prices == {
        "g5.xlarge": Decimal("1.006"),
        "p4d.24xlarge": Decimal("32.7726"),
        "p4de.24xlarge": Decimal("40.9657"),
        "m5.large": Decimal("0.096"),
        "t3.micro": Decimal("0.0104"),
    }


def test_price_list_with_the_wrong_shape_is_a_clear_error() -> None:
    with pytest.raises(CatalogFetchError, match="'terms' is missing"):
        linux_on_demand_prices({"products": {}}, "AWS price list for us-east-1")


def test_latest_spot_price_wins_per_type_and_zone() -> None:
    history = [
        {
            "InstanceType": "p3.2xlarge",
            "ProductDescription": "Linux/UNIX",
            "SpotPrice": price,
            "AvailabilityZone": zone,
            "Timestamp": datetime(2024, 6, 1, hour, tzinfo=UTC),
        }
        for price, zone, hour in [
            ("0.9180", "us-east-1a", 3),
            ("1.0100", "us-east-1a", 5),
            ("0.9500", "us-east-1a", 4),
            ("1.2000", "us-east-1b", 1),
        ]
    ]
    history.append({**history[0], "ProductDescription": "Windows", "SpotPrice": "9.9"})
    zone_ids = {"us-east-1a": "use1-az6", "us-east-1b": "use1-az1"}
    assert latest_spot_prices(history, zone_ids) == {
        ("p3.2xlarge", "use1-az6"): Decimal("1.0100"),
        ("p3.2xlarge", "use1-az1"): Decimal("1.2000"),
    }


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (
            {
                "GpuInfo": {
                    "Gpus": [{"Name": "A100", "Count": 8, "MemoryInfo": {"SizeInMiB": 81920}}]
                }
            },
            ("A100-80GB", 8),
        ),
        (
            {
                "GpuInfo": {
                    "Gpus": [{"Name": "A100", "Count": 8, "MemoryInfo": {"SizeInMiB": 40960}}]
                }
            },
            ("A100", 8),
        ),
        (
            {
                "GpuInfo": {
                    "Gpus": [{"Name": "V100", "Count": 8, "MemoryInfo": {"SizeInMiB": 32768}}]
                }
            },
            ("V100-32GB", 8),
        ),
        ({"NeuronInfo": {"NeuronDevices": [{"Name": "Trainium", "Count": 16}]}}, ("Trainium", 16)),
        (
            {"InferenceAcceleratorInfo": {"Accelerators": [{"Name": "Inferentia", "Count": 4}]}},
            ("Inferentia", 4),
        ),
        (
            {"GpuInfo": {"Gpus": [{"Name": "L4", "Count": 0, "MemoryInfo": {"SizeInMiB": 2861}}]}},
            ("L4", 0),
        ),
        ({}, ("", None)),
    ],
)
def test_accelerator_names_follow_the_catalog_spelling(
    info: dict[str, Any], expected: tuple[str, int | None]
) -> None:
    assert accelerator_of(info) == expected

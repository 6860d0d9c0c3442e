"""Build AWS catalog rows: EC2 APIs (types, zone offerings, spot prices) plus the Price List.

Sources, per region:
- DescribeAvailabilityZones: zone name → zone ID (spot history speaks names,
  catalogs speak IDs, which are the same in every account);
- DescribeInstanceTypeOfferings (LocationType=availability-zone-id): where each
  type can be launched;
- DescribeInstanceTypes: vCPUs, memory, GPUs / Neuron / Inferentia devices;
- DescribeSpotPriceHistory from "now": the latest Linux/UNIX price per type and zone;
- the public Price List bulk offer file for the region: Linux on-demand prices.
  (Chosen over the Pricing API's GetProducts because it needs no credentials and
  no pagination; the cost is that a region's file is large — hundreds of MB for
  us-east-1 — and is read whole, so only one is held at a time, decoded off the
  event loop.)

EC2 calls go through aioboto3 with botocore's "standard" retry mode, which backs
off on throttling by itself; the price list goes through JsonGetter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from skyd.catalog.fetch.aws_price_list import linux_on_demand_prices, offer_file_path
from skyd.catalog.fetch.endpoints import FetchEndpoints
from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.http_json import JsonGetter
from skyd.catalog.fetch.rows import CatalogRow
from skyd.clock import Clock

log = logging.getLogger(__name__)

# Regions fetched at once: enough to hide latency, few enough not to be throttled.
REGION_CONCURRENCY = 4
LINUX_SPOT_PRODUCTS = frozenset({"Linux/UNIX", "Linux/UNIX (Amazon VPC)"})
MIB_PER_GIB = Decimal(1024)


@dataclass(frozen=True)
class InstanceTypeSpec:
    vcpus: Decimal
    memory_gib: Decimal
    accelerator_name: str
    accelerator_count: int | None


async def fetch_aws_rows(
    endpoints: FetchEndpoints, http: JsonGetter, clock: Clock
) -> list[CatalogRow]:
    import aioboto3
    from botocore.config import Config

    session = aioboto3.Session()
    config = Config(
        retries={"mode": "standard", "max_attempts": 8},
        connect_timeout=15,
        read_timeout=60,
    )
    with _ec2_errors("listing regions"):
        regions = endpoints.aws_regions or await _enabled_regions(session, config, endpoints)
    limit = asyncio.Semaphore(REGION_CONCURRENCY)
    offer_file_slot = asyncio.Semaphore(1)

    async def one_region(region: str) -> list[CatalogRow]:
        async with limit:
            with _ec2_errors(f"region {region}"):
                return await _region_rows(
                    session, config, endpoints, http, clock, region, offer_file_slot
                )

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one_region(region)) for region in regions]
    except ExceptionGroup as failures:
        # One failed region fails the fetch; report it plainly, not as a group.
        first = failures.exceptions[0]
        if isinstance(first, CatalogFetchError):
            raise first from None
        raise
    return [row for task in tasks for row in task.result()]


async def _enabled_regions(session: Any, config: Any, endpoints: FetchEndpoints) -> tuple[str, ...]:
    async with session.client(
        "ec2", region_name="us-east-1", endpoint_url=endpoints.aws_ec2_url, config=config
    ) as ec2:
        answer = await ec2.describe_regions()
    return tuple(sorted(region["RegionName"] for region in answer["Regions"]))


async def _region_rows(
    session: Any,
    config: Any,
    endpoints: FetchEndpoints,
    http: JsonGetter,
    clock: Clock,
    region: str,
    offer_file_slot: asyncio.Semaphore,
) -> list[CatalogRow]:
    # The price list first: it is the likelier to fail, and fails before the slow EC2 calls.
    # One offer file at a time: decoded, a large one takes gigabytes of memory.
    url = endpoints.aws_price_list_url.rstrip("/") + offer_file_path(region)
    async with offer_file_slot:
        offer = await http.get(url)
        on_demand = await asyncio.to_thread(
            linux_on_demand_prices, offer, f"AWS price list for {region}"
        )
        del offer
    async with session.client(
        "ec2", region_name=region, endpoint_url=endpoints.aws_ec2_url, config=config
    ) as ec2:
        zones = await ec2.describe_availability_zones()
        zone_ids = {
            zone["ZoneName"]: zone["ZoneId"]
            for zone in zones["AvailabilityZones"]
            # Local Zones and Wavelength zones have their own prices and quirks.
            if zone.get("ZoneType", "availability-zone") == "availability-zone"
        }
        offered: dict[str, set[str]] = {}
        async for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone-id"
        ):
            for offering in page["InstanceTypeOfferings"]:
                offered.setdefault(offering["InstanceType"], set()).add(offering["Location"])
        specs: dict[str, InstanceTypeSpec] = {}
        async for page in ec2.get_paginator("describe_instance_types").paginate():
            for info in page["InstanceTypes"]:
                spec = instance_type_spec(info)
                if info["InstanceType"] in offered and spec is not None:
                    specs[info["InstanceType"]] = spec
        history: list[Mapping[str, Any]] = []
        async for page in ec2.get_paginator("describe_spot_price_history").paginate(
            StartTime=datetime.fromtimestamp(clock.now(), UTC),
            ProductDescriptions=["Linux/UNIX"],
        ):
            history.extend(page["SpotPriceHistory"])
    spot = latest_spot_prices(history, zone_ids)
    valid_zone_ids = set(zone_ids.values())
    rows = []
    for instance_type, locations in offered.items():
        spec = specs.get(instance_type)
        if spec is None:
            continue
        for zone_id in sorted(locations & valid_zone_ids):
            price = on_demand.get(instance_type)
            spot_price = spot.get((instance_type, zone_id))
            if price is None and spot_price is None:
                continue
            rows.append(
                CatalogRow(
                    cloud="aws",
                    instance_type=instance_type,
                    accelerator_name=spec.accelerator_name,
                    accelerator_count=spec.accelerator_count,
                    vcpus=spec.vcpus,
                    memory_gib=spec.memory_gib,
                    price=price,
                    spot_price=spot_price,
                    region=region,
                    zone=zone_id,
                )
            )
    log.info("aws %s: %d rows from %d offered types", region, len(rows), len(offered))
    return rows


def instance_type_spec(info: Mapping[str, Any]) -> InstanceTypeSpec | None:
    """vCPUs, memory and accelerator of one DescribeInstanceTypes entry.

    None for types with a fraction of a GPU (g6f: EC2 reports a count of 0), which
    the catalog's whole-number accelerator_count cannot describe.
    """
    name, count = accelerator_of(info)
    if count == 0:
        return None
    return InstanceTypeSpec(
        vcpus=Decimal(info["VCpuInfo"]["DefaultVCpus"]),
        memory_gib=Decimal(info["MemoryInfo"]["SizeInMiB"]) / MIB_PER_GIB,
        accelerator_name=name,
        accelerator_count=count,
    )


def accelerator_of(info: Mapping[str, Any]) -> tuple[str, int | None]:
    """The accelerator name skyd catalogs use, and how many; ("", None) for CPU-only types.

    The count is 0 for fractional GPUs.

    EC2 names the A100 of p4de and the V100 of p3dn like their smaller-memory
    siblings; the catalogs tell them apart by memory, as users ask for them.
    """
    devices: list[tuple[str, int, int]] = []
    for gpu in info.get("GpuInfo", {}).get("Gpus", []):
        memory = gpu.get("MemoryInfo", {}).get("SizeInMiB", 0)
        devices.append((gpu["Name"], gpu.get("Count", 1), memory))
    for device in info.get("NeuronInfo", {}).get("NeuronDevices", []):
        devices.append((device["Name"], device.get("Count", 1), 0))
    for device in info.get("InferenceAcceleratorInfo", {}).get("Accelerators", []):
        devices.append((device["Name"], device.get("Count", 1), 0))
    if not devices:
        return "", None
    name, _, memory_mib = devices[0]
    if name == "A100" and memory_mib >= 80 * 1024:
        name = "A100-80GB"
    elif name == "V100" and memory_mib >= 32 * 1024:
        name = "V100-32GB"
    return name, sum(count for _, count, _ in devices)


def latest_spot_prices(
    history: Iterable[Mapping[str, Any]], zone_ids: Mapping[str, str]
) -> dict[tuple[str, str], Decimal]:
    """(instance type, zone ID) → the most recent Linux spot price in the history."""
    latest: dict[tuple[str, str], tuple[datetime, Decimal]] = {}
    for item in history:
        if item.get("ProductDescription") not in LINUX_SPOT_PRODUCTS:
            continue
        zone_id = zone_ids.get(item["AvailabilityZone"])
        if zone_id is None:
            continue
        try:
            price = Decimal(item["SpotPrice"])
        except InvalidOperation:
            raise CatalogFetchError(
                f"AWS spot price history: SpotPrice {item['SpotPrice']!r} for "
                f"{item['InstanceType']} in {item['AvailabilityZone']} is not a number"
            ) from None
        key = (item["InstanceType"], zone_id)
        stamp = _as_datetime(item["Timestamp"])
        if price > 0 and (key not in latest or stamp > latest[key][0]):
            latest[key] = (stamp, price)
    return {key: price for key, (_, price) in latest.items()}


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@contextmanager
def _ec2_errors(what: str) -> Iterator[None]:
    """Turns botocore failures into CatalogFetchError naming what was being fetched."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError as exc:
        raise CatalogFetchError(
            f"AWS {what}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY or configure a profile (any account can read prices)"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CatalogFetchError(
            f"AWS {what}: {error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from exc
    except BotoCoreError as exc:
        raise CatalogFetchError(f"AWS {what}: {exc}") from exc

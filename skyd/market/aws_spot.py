"""Live AWS spot prices: DescribeSpotPriceHistory (latest per type and zone) via aioboto3."""

from __future__ import annotations

from collections.abc import Sequence

from skyd.market.sources import SourceUnavailableError
from skyd.model import Offer, dollars_to_micros
from skyd.store.market import Observation


class AwsSpotPriceSource:
    """Asks EC2 for the spot prices in force now for the catalog's AWS types, per region.

    The catalog keys AWS zones by AZ ID (use1-az2); EC2 answers with AZ names, so each
    region's name → ID map is read once from DescribeAvailabilityZones."""

    name = "aws-spot-prices"

    def __init__(
        self,
        offers: Sequence[Offer],
        *,
        endpoint_url: str | None = None,
        regions: Sequence[str] | None = None,
        interval_seconds: float = 600.0,
    ) -> None:
        self._offers = [o for o in offers if o.cloud == "aws" and o.spot_price_micros is not None]
        wanted = sorted({o.region for o in self._offers})
        self._regions = [r for r in wanted if regions is None or r in regions]
        self._endpoint_url = endpoint_url
        self.interval_seconds = interval_seconds
        self._zone_ids: dict[str, dict[str, str]] = {}
        self._keys = {(o.region, o.zone, o.instance_type): o.key for o in self._offers}

    async def fetch(self) -> list[Observation]:
        import aioboto3
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )

        session = aioboto3.Session()
        found: list[Observation] = []
        for region in self._regions:
            types = sorted({t for (r, _z, t) in self._keys if r == region})
            try:
                async with session.client(
                    "ec2", region_name=region, endpoint_url=self._endpoint_url
                ) as ec2:
                    if region not in self._zone_ids:
                        zones = await ec2.describe_availability_zones()
                        self._zone_ids[region] = {
                            z["ZoneName"]: z["ZoneId"] for z in zones["AvailabilityZones"]
                        }
                    paginator = ec2.get_paginator("describe_spot_price_history")
                    async for page in paginator.paginate(
                        InstanceTypes=types,
                        ProductDescriptions=["Linux/UNIX"],
                        StartTime=_now_utc(),
                    ):
                        found.extend(self._observations(region, page["SpotPriceHistory"]))
            except (NoCredentialsError, NoRegionError) as exc:
                raise SourceUnavailableError(f"no AWS credentials or region: {exc}") from exc
            except EndpointConnectionError as exc:
                raise SourceUnavailableError(f"AWS endpoint unreachable: {exc}") from exc
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId"):
                    raise SourceUnavailableError(f"AWS refused the credentials ({code})") from exc
                raise
        return found

    def _observations(self, region: str, items: Sequence[dict[str, object]]) -> list[Observation]:
        ids = self._zone_ids.get(region, {})
        latest: dict[str, tuple[float, int]] = {}
        for item in items:
            zone_id = ids.get(str(item["AvailabilityZone"]))
            key = self._keys.get((region, zone_id or "", str(item["InstanceType"])))
            if key is None:
                continue
            when = item["Timestamp"].timestamp()  # type: ignore[attr-defined]
            price = dollars_to_micros(str(item["SpotPrice"]))
            if key not in latest or when > latest[key][0]:
                latest[key] = (when, price)
        return [
            Observation(scope=key, at=when, source=self.name, spot_price_micros=price)
            for key, (when, price) in sorted(latest.items())
        ]

    async def aclose(self) -> None:
        return None


def _now_utc() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)

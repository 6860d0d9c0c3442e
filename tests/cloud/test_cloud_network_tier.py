"""`network_tier: best` through each provider against its strict fake: the launch request
carries the cloud's faster network (an EFA interface on EC2, accelerated networking on the
Azure NIC, gVNIC + Tier_1 on GCE) where the type takes it, and the fake refuses it, as the
cloud does, on a type that does not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from google.cloud import compute_v1

from skyd.catalog import Catalog
from skyd.errors import ProviderError
from skyd.model import LaunchRequest, Offer
from skyd.providers.base import job_tags
from skyd.providers.gcp.body import instance_body
from skyd.providers.gcp.config import GcpConfig
from skyd.testing.cloud_world import AWS_IMAGE, AZURE_GROUP, CloudWorld
from skyd.testing.gce_schema import check_tier1

pytestmark = pytest.mark.timeout(300)


def _request(offer: Offer, job_id: int, tier: str | None = "best") -> LaunchRequest:
    token = f"skyd-{job_id}-1"
    return LaunchRequest(
        job_id=job_id,
        attempt=1,
        client_token=token,
        offer=offer,
        spot=False,
        tags=job_tags("me", job_id, 1, token),
        network_tier=tier,
    )


async def test_best_network_is_asked_where_it_applies_and_refused_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = CloudWorld(tmp_path / "world", boot_delay_s=0.1)
    await world.start()
    try:
        catalog = Catalog.load()
        providers = world.providers(catalog)
        by_key = {o.key: o for o in catalog.offers}
        aws, azure, gcp = providers["aws"], providers["azure"], providers["gcp"]

        # AWS: the primary interface becomes an EFA, in the provider's subnet and group
        efa_type = next(
            o for k, o in by_key.items() if k.startswith("aws/us-east-1/") and "g4dn.8x" in k
        )
        await aws.launch(_request(efa_type, 1))
        (asked,) = world.ec2.network_interfaces[-1:]
        assert asked["NetworkInterface.1.InterfaceType"] == "efa"
        assert asked["NetworkInterface.1.DeviceIndex"] == "0"
        assert asked["NetworkInterface.1.SubnetId"].startswith("subnet-")
        assert asked["NetworkInterface.1.SecurityGroupId.1"].startswith("sg-")
        plain = by_key["aws/us-east-1/use1-az1/c5.large"]
        await aws.launch(_request(plain, 2, tier="standard"))
        assert "NetworkInterface.1.InterfaceType" not in world.ec2.network_interfaces[-1]
        # the fake refuses an EFA on a type without one, as EC2 does
        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=world.ec2.endpoint_url)
        subnet = asked["NetworkInterface.1.SubnetId"]
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(
                ec2.run_instances,
                ImageId=AWS_IMAGE,
                InstanceType="c5.large",
                MinCount=1,
                MaxCount=1,
                NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "InterfaceType": "efa"}],
            )
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidParameterCombination"
        assert "c5.large instances do not support Elastic Fabric Adapters" in error["Message"]

        # Azure: the NIC is created with accelerated networking
        await azure.launch(_request(by_key["azure/eastus//Standard_D4s_v5"], 3))
        nics = [n for (g, _), n in world.azure.nics.items() if g == AZURE_GROUP]
        assert [n["properties"].get("enableAcceleratedNetworking") for n in nics] == [True]
        # ... and a size without it is refused by the fake when the VM is created
        monkeypatch.setattr("skyd.providers.azure.provider.wants_accelerated", lambda t, o: True)
        with pytest.raises(ProviderError, match="accelerated networking"):
            slow = next(o for k, o in by_key.items() if k.endswith("//Standard_NC6"))
            await azure.launch(_request(slow, 4))

        # GCE: no shipped GCP offering takes Tier_1 (placement leaves them out); the fake
        # refuses Tier_1 on one that does not, as Compute Engine does
        monkeypatch.setattr("skyd.providers.gcp.body.wants_tier1", lambda t, o: True)
        small = by_key["gcp/us-central1/us-central1-a/n2-standard-8"]
        with pytest.raises(ProviderError, match="Tier_1 networking is not supported"):
            await gcp.launch(_request(small, 5))
        assert world.gce.refused[-1].field.endswith("totalEgressBandwidthTier")
        for provider in providers.values():
            await provider.aclose()
    finally:
        await world.stop()


def test_gce_body_for_a_tier1_machine_carries_gvnic_and_tier1() -> None:
    big = Offer("gcp", "us-central1", "us-central1-a", "n2-standard-32", "", 0, 32, 128, 1, None)
    body = instance_body(GcpConfig(project="p"), _request(big, 1), "us-central1-a", "vm-1")
    sent = json.loads(compute_v1.Instance.to_json(compute_v1.Instance(body)))
    assert sent["networkInterfaces"][0]["nicType"] == "GVNIC"
    assert sent["networkPerformanceConfig"] == {"totalEgressBandwidthTier": "TIER_1"}
    assert check_tier1(sent, "n2-standard-32") is None
    # without the gVNIC, Compute Engine refuses Tier_1
    del sent["networkInterfaces"][0]["nicType"]
    refused = check_tier1(sent, "n2-standard-32")
    assert refused is not None and "GVNIC" in refused.message
    standard = instance_body(
        GcpConfig(project="p"), _request(big, 1, tier=None), "us-central1-a", "vm-1"
    )
    assert "network_performance_config" not in standard

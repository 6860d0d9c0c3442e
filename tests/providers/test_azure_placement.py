"""Azure gangs in a proximity placement group, against the fake Resource Manager that checks
the group's body against the vendored Compute spec: what ARM refuses is refused, a gang's
VMs name their own group, the group goes with the last VM, and a sweep deletes one a crash
left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from skyd.clock import VirtualClock
from skyd.model import LaunchRequest, Offer
from skyd.providers.azure import AzureConfig, AzureProvider
from skyd.providers.base import MANAGED, TAG_DAEMON, TAG_JOB, TAG_MANAGED
from skyd.testing.azure_schema import api_version
from skyd.testing.fake_azure import FakeAzure, StaticTokenCredential
from tests.providers.gangs import gang_request

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
GROUP = "lab"
PPGS = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/"
    "Microsoft.Compute/proximityPlacementGroups"
)


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeAzure]:
    arm = FakeAzure(tmp_path)
    await arm.start()
    yield arm
    await arm.stop()


def config(fake: FakeAzure) -> AzureConfig:
    return AzureConfig(
        subscription_id=SUBSCRIPTION,
        resource_group=GROUP,
        base_url=fake.base_url,
        ca_file=str(fake.ca_file),
        ssh_public_key="ssh-ed25519 AAAA skyd-test",
        poll_interval_s=0,
    )


@pytest.fixture
async def provider(fake: FakeAzure) -> AsyncIterator[AzureProvider]:
    azure = AzureProvider(config(fake), credential=StaticTokenCredential(), clock=VirtualClock())
    yield azure
    await azure.aclose()


def gang(job_id: int, nodes: int = 2) -> LaunchRequest:
    offer = Offer("azure", "eastus", "", "Standard_D4s_v5", "", 0, 4, 16, 192_000, 38_000)
    return gang_request(offer, job_id, nodes)


async def arm(fake: FakeAzure, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import ssl

    context = ssl.create_default_context(cafile=str(fake.ca_file))
    version = api_version("Microsoft.Compute")
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{fake.base_url}{path}",
            params={"api-version": version},
            json=body,
            headers={"Authorization": "Bearer test"},
            ssl=context,
        ) as r,
    ):
        text = await r.text()
        return r.status, (await r.json()) if text else None


async def test_the_fake_refuses_what_arm_refuses(fake: FakeAzure) -> None:
    status, err = await arm(fake, "PUT", f"{PPGS}/g1", {"properties": {}})
    assert (status, err["error"]["code"]) == (400, "LocationRequired"), err
    wrong = {"location": "eastus", "properties": {"proximityPlacementGroupType": "Tight"}}
    status, err = await arm(fake, "PUT", f"{PPGS}/g1", wrong)
    assert (status, err["error"]["code"]) == (400, "InvalidParameter"), err
    unknown = {"location": "eastus", "properties": {"colocated": True}}
    status, err = await arm(fake, "PUT", f"{PPGS}/g1", unknown)
    assert status == 400 and "colocated" in err["error"]["message"], err
    good = {"location": "eastus", "properties": {"intent": {"vmSizes": ["Standard_D4s_v5"]}}}
    status, made = await arm(fake, "PUT", f"{PPGS}/g1", good)
    assert status == 201 and made["properties"]["virtualMachines"] == [], made
    assert made["properties"]["proximityPlacementGroupType"] == "Standard"
    status, listed = await arm(fake, "GET", PPGS)
    assert status == 200 and [g["name"] for g in listed["value"]] == ["g1"]
    status, _ = await arm(fake, "DELETE", f"{PPGS}/g1")
    assert status == 200 and fake.placement.groups == {}
    status, err = await arm(fake, "GET", f"{PPGS}/g1")
    assert (status, err["error"]["code"]) == (404, "ResourceNotFound")


async def test_a_gang_shares_its_own_proximity_group_which_goes_with_it(
    fake: FakeAzure, provider: AzureProvider
) -> None:
    request = gang(job_id=5)
    launched = await provider.launch(request)
    again = await provider.launch(request)  # a retried launch: same VMs, same group
    assert sorted(i.instance_id for i in again) == sorted(i.instance_id for i in launched)
    [(_, ppg)] = list(fake.placement.groups.items())
    assert ppg["tags"][TAG_MANAGED] == MANAGED and ppg["tags"][TAG_JOB] == "5"
    assert ppg["tags"][TAG_DAEMON] == "lab-a" and ppg["location"] == "eastus"
    members = sorted(m["id"].rsplit("/", 1)[-1] for m in fake.placement.members(ppg["id"]))
    assert members == sorted(i.instance_id.split("/")[1] for i in launched)
    await provider.terminate([launched[0].instance_id])
    assert len(fake.placement.groups) == 1  # the other VM is still in it
    await provider.terminate([launched[1].instance_id])
    assert fake.placement.groups == {}


async def test_one_vm_needs_no_group(fake: FakeAzure, provider: AzureProvider) -> None:
    launched = await provider.launch(gang(job_id=6, nodes=1))
    assert len(launched) == 1 and fake.placement.groups == {}


async def test_a_vm_outside_its_groups_region_is_refused(
    fake: FakeAzure, provider: AzureProvider
) -> None:
    body = {"location": "westus2", "properties": {}}
    status, _ = await arm(fake, "PUT", f"{PPGS}/elsewhere", body)
    assert status == 201
    vm = {
        "location": "eastus",
        "properties": {"proximityPlacementGroup": {"id": f"{PPGS}/elsewhere"}},
    }
    refused = fake.placement.check_vm(vm, "vm1")
    assert refused is not None and refused.status == 400
    missing = {"location": "eastus", "properties": {"proximityPlacementGroup": {"id": f"{PPGS}/x"}}}
    refused = fake.placement.check_vm(missing, "vm1")
    assert refused is not None and refused.status == 404


async def test_a_sweep_deletes_a_group_a_crash_left(
    fake: FakeAzure, provider: AzureProvider
) -> None:
    running = await provider.launch(gang(job_id=9))
    crashed = gang(job_id=10)
    await provider.placement.ensure("skyd-ppg-10-abc", crashed)
    other = {"location": "eastus", "tags": {TAG_MANAGED: MANAGED, TAG_DAEMON: "b"}}
    assert (await arm(fake, "PUT", f"{PPGS}/skyd-ppg-11-abc", other))[0] == 201
    mine = {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-a"}
    assert await provider.sweep_placement(mine) == [f"{GROUP}/skyd-ppg-10-abc"]
    await provider.terminate([i.instance_id for i in running])
    assert [g["name"] for g in fake.placement.groups.values()] == ["skyd-ppg-11-abc"]

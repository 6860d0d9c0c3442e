"""The fake Resource Manager refuses what the real one refuses (unknown members, bad enums,
unknown images, an api-version it has no spec for), in ARM's error shape; skyd's own
bodies (VM, NIC, public IP, NSG) pass it."""

from __future__ import annotations

import copy
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from skyd.clock import VirtualClock
from skyd.errors import RequestRefusedError
from skyd.model import Offer
from skyd.providers.azure import AzureConfig, AzureProvider
from skyd.providers.azure.provider import split_instance_key
from skyd.testing.azure_schema import api_version
from skyd.testing.fake_azure import FakeAzure, StaticTokenCredential
from tests.providers.contract import request_for

SUB = "00000000-0000-0000-0000-000000000001"
VM: dict[str, Any] = {
    "location": "eastus",
    "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {
            "imageReference": {
                "publisher": "Canonical",
                "offer": "ubuntu-24_04-lts",
                "sku": "server",
                "version": "latest",
            },
            "osDisk": {"createOption": "FromImage"},
        },
        "priority": "Spot",
        "evictionPolicy": "Deallocate",
    },
}


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeAzure]:
    arm = FakeAzure(tmp_path)
    await arm.start()
    yield arm
    await arm.stop()


async def _put(
    fake: FakeAzure, kind: str, body: dict[str, Any], version: str | None = None
) -> tuple[int, Any]:
    namespace = "Microsoft.Compute" if kind == "virtualMachines" else "Microsoft.Network"
    url = (
        f"{fake.base_url}/subscriptions/{SUB}/resourceGroups/lab/providers/{namespace}/{kind}/x"
        f"?api-version={version or api_version(namespace)}"
    )
    context = ssl.create_default_context(cafile=str(fake.ca_file))
    headers = {"Authorization": "Bearer t"}
    async with (
        aiohttp.ClientSession() as session,
        session.put(url, json=body, headers=headers, ssl=context) as response,
    ):
        return response.status, await response.json()


def _vm(path: list[str], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VM)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


async def test_a_valid_vm_body_is_accepted(fake: FakeAzure) -> None:
    status, answer = await _put(fake, "virtualMachines", VM)
    assert status == 201 and answer["properties"]["priority"] == "Spot"


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        (
            _vm(["properties", "priorty"], "Spot"),
            400,
            "InvalidRequestContent",
            "Could not find member 'priorty' on object of type 'VirtualMachineProperties'. "
            "Path 'properties.priorty'.",
        ),
        (
            _vm(["properties", "evictonPolicy"], "Delete"),
            400,
            "InvalidRequestContent",
            "Could not find member 'evictonPolicy'",
        ),
        (
            _vm(["properties", "priority"], "Spott"),
            400,
            "InvalidParameter",
            "The value 'Spott' of parameter 'properties.priority' is not valid",
        ),
        (
            _vm(["properties", "storageProfile", "imageReference", "offer"], "no-such-offer"),
            404,
            "PlatformImageNotFound",
            "The platform image 'Canonical:no-such-offer:server:latest' is not available",
        ),
        (_vm(["location"], ""), 400, "LocationRequired", "location property is required"),
    ],
    ids=["priorty", "evictonPolicy", "bad-enum", "image", "location"],
)
async def test_vm_mistakes_are_refused_in_arm_error_shape(
    fake: FakeAzure, body: dict[str, Any], status: int, code: str, says: str
) -> None:
    got, answer = await _put(fake, "virtualMachines", body)
    assert got == status
    assert answer["error"]["code"] == code and says in answer["error"]["message"]
    assert fake.vms == {}


async def test_network_bodies_are_checked_too(fake: FakeAzure) -> None:
    status, answer = await _put(
        fake, "networkInterfaces", {"location": "eastus", "properties": {"ipConfiguration": []}}
    )
    assert status == 400 and answer["error"]["code"] == "InvalidRequestFormat"
    assert "Could not find member 'ipConfiguration'" in answer["error"]["details"][0]["message"]
    status, answer = await _put(
        fake,
        "publicIPAddresses",
        {"location": "eastus", "sku": {"name": "Premium"}},
    )
    assert status == 400 and answer["error"]["code"] == "InvalidParameter"
    assert fake.nics == {} and fake.ips == {}


async def test_an_api_version_without_a_spec_is_refused(fake: FakeAzure) -> None:
    status, answer = await _put(fake, "virtualMachines", VM, version="2019-01-01")
    assert status == 400 and answer["error"]["code"] == "NoRegisteredProviderFound"


def _provider(fake: FakeAzure, **settings: Any) -> AzureProvider:
    """skyd's adapter on the fake, with these settings beside the connection and key."""
    config = AzureConfig(
        subscription_id=SUB,
        resource_group="lab",
        base_url=fake.base_url,
        ca_file=str(fake.ca_file),
        ssh_public_key="ssh-ed25519 AAAA k",
        poll_interval_s=0,
        **settings,
    )
    return AzureProvider(config, credential=StaticTokenCredential(), clock=VirtualClock())


async def test_skyd_opens_ssh_from_the_configured_cidr_and_boots_gpus_on_the_hpc_image(
    fake: FakeAzure,
) -> None:
    provider = _provider(fake, ssh_ingress_cidrs=("198.51.100.0/24",))
    offer = Offer("azure", "eastus", "", "Standard_NC6s_v3", "V100", 1, 6, 112, 1, 1)
    try:
        [inst] = await provider.launch(request_for(offer, spot=False, job_id=8))
        name = split_instance_key(inst.instance_id)[1]
        [rule] = fake.nsgs[("lab", f"{name}-nsg")]["properties"]["securityRules"]
        assert rule["properties"]["destinationPortRange"] == "22"
        assert rule["properties"]["sourceAddressPrefixes"] == ["198.51.100.0/24"]
        nic = fake.nics[("lab", f"{name}-nic")]["properties"]
        assert nic["networkSecurityGroup"]["id"].endswith(f"/networkSecurityGroups/{name}-nsg")
        image = fake.vms[("lab", name)]["properties"]["storageProfile"]["imageReference"]
        assert (image["publisher"], image["offer"]) == ("microsoft-dsvm", "ubuntu-hpc")
        assert fake.refused == []
        await provider.terminate([inst.instance_id])
        assert fake.nsgs == {} and fake.nics == {} and fake.ips == {} and fake.vms == {}
    finally:
        await provider.aclose()


async def test_a_refused_image_fails_the_job_with_the_fix(fake: FakeAzure) -> None:
    provider = _provider(fake, image_offer="ubuntu-99_04-lts")
    offer = Offer("azure", "eastus", "", "Standard_D2s_v5", "", 0, 2, 8, 1, 1)
    try:
        with pytest.raises(RequestRefusedError, match=r"fix: set azure\.image_publisher"):
            await provider.launch(request_for(offer, spot=False, job_id=9))
        assert fake.vms == {} and fake.nics == {} and fake.nsgs == {}
    finally:
        await provider.aclose()

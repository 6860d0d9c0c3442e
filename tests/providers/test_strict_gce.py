"""The fake Compute Engine refuses what the real API refuses (schema, enums, zones' machine
and accelerator types, images), in GCE's error shape; skyd's GPU launches pass it."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from skyd.errors import RequestRefusedError
from skyd.model import Offer
from skyd.providers.gcp import GcpConfig, GcpProvider
from skyd.providers.gcp.provider import split_instance_key
from skyd.testing.fake_gce import FakeGce
from tests.providers.contract import request_for

ZONE = "us-central1-a"
BODY: dict[str, Any] = {
    "name": "vm-1",
    "machineType": f"zones/{ZONE}/machineTypes/n1-standard-4",
    "disks": [
        {
            "boot": True,
            "autoDelete": True,
            "initializeParams": {
                "sourceImage": "projects/debian-cloud/global/images/family/debian-12",
                "diskSizeGb": "50",
            },
        }
    ],
    "networkInterfaces": [{"network": "global/networks/default"}],
    "scheduling": {"provisioningModel": "SPOT", "instanceTerminationAction": "DELETE"},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGce]:
    gce = FakeGce()
    await gce.start()
    yield gce
    await gce.stop()


async def _insert(fake: FakeGce, body: dict[str, Any], zone: str = ZONE) -> tuple[int, Any]:
    url = f"{fake.endpoint}/compute/v1/projects/lab/zones/{zone}/instances"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.json()


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


async def test_a_valid_body_is_accepted(fake: FakeGce) -> None:
    status, answer = await _insert(fake, BODY)
    assert status == 200 and answer["kind"] == "compute#operation"


@pytest.mark.parametrize(
    ("body", "status", "reason", "says"),
    [
        (
            _with(["machineType"], f"zones/{ZONE}/machineTypes/n1-standard-4+T4x1"),
            400,
            "invalid",
            "Machine type with name 'n1-standard-4+T4x1' does not exist in zone 'us-central1-a'",
        ),
        (
            _with(["scheduling", "priorty"], "Spot"),
            400,
            "invalid",
            "Unknown name \"priorty\" at 'resource.scheduling': Cannot find field.",
        ),
        (
            _with(["evictonPolicy"], "Delete"),
            400,
            "invalid",
            "Unknown name \"evictonPolicy\" at 'resource'",
        ),
        (
            _with(["scheduling", "provisioningModel"], "SPOTT"),
            400,
            "invalid",
            "Invalid value at 'resource.scheduling.provisioning_model' "
            "(type.googleapis.com/google.cloud.compute.v1.Scheduling.ProvisioningModel), "
            '"SPOTT"',
        ),
        (
            _with(["disks", 0, "initializeParams", "sourceImage"], "projects/x/global/images/y"),
            404,
            "notFound",
            "The resource 'projects/x/global/images/y' was not found",
        ),
        (
            _with(
                ["guestAccelerators"],
                [{"acceleratorType": f"zones/{ZONE}/acceleratorTypes/nvidia-h100-80gb"}],
            ),
            400,
            "invalid",
            "Accelerator type 'nvidia-h100-80gb' does not exist in zone 'us-central1-a'",
        ),
        (
            _with(
                ["guestAccelerators"],
                [
                    {
                        "acceleratorType": f"zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4",
                        "acceleratorCount": 1,
                    }
                ],
            ),
            400,
            "badRequest",
            "do not support live migration",
        ),
        (_with(["disks", 0, "boot"], "yes"), 400, "invalid", "'resource.disks[0].boot'"),
    ],
    ids=[
        "plus-machine-type",
        "priorty",
        "evictonPolicy",
        "bad-enum",
        "image",
        "gpu",
        "migrate",
        "type",
    ],
)
async def test_mistakes_are_refused_in_gce_error_shape(
    fake: FakeGce, body: dict[str, Any], status: int, reason: str, says: str
) -> None:
    got, answer = await _insert(fake, body)
    assert got == status
    error = answer["error"]
    assert error["code"] == status
    assert says in error["message"]
    assert error["errors"][0]["reason"] == reason
    assert fake.instances == {}


async def test_unknown_zone_is_refused(fake: FakeGce) -> None:
    status, answer = await _insert(fake, BODY, zone="us-central1-z")
    assert status == 400 and "Unknown zone" in answer["error"]["message"]
    url = f"{fake.endpoint}/compute/v1/projects/lab/zones/us-central1-z/instances/vm-1"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 400  # every zonal call, not only inserts


async def test_n1_gpu_offer_launches_base_type_with_guest_accelerators(fake: FakeGce) -> None:
    provider = GcpProvider(
        GcpConfig(project="lab", endpoint=fake.endpoint, anonymous=True, ssh_public_key="k")
    )
    offer = Offer("gcp", "us-central1", ZONE, "n1-standard-4+T4x1", "T4", 1, 4, 15, 1, 1)
    try:
        [inst] = await provider.launch(request_for(offer, spot=False, job_id=5))
        raw = fake.instances[("lab", ZONE, split_instance_key(inst.instance_id)[1])]
        assert raw["machineType"].endswith("/machineTypes/n1-standard-4")
        assert raw["guestAccelerators"] == [
            {
                "acceleratorType": f"zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4",
                "acceleratorCount": 1,
            }
        ]
        assert raw["scheduling"]["onHostMaintenance"] == "TERMINATE"
        image = raw["disks"][0]["initializeParams"]["sourceImage"]
        assert image.startswith("projects/deeplearning-platform-release/")
        await provider.terminate([inst.instance_id])
    finally:
        await provider.aclose()


async def test_a_refused_launch_fails_the_job_with_the_fix(fake: FakeGce) -> None:
    provider = GcpProvider(
        GcpConfig(
            project="lab",
            endpoint=fake.endpoint,
            anonymous=True,
            image="projects/x/global/images/family/nope",
        )
    )
    offer = Offer("gcp", "us-central1", ZONE, "n2-standard-8", "", 0, 8, 32, 1, 1)
    try:
        with pytest.raises(RequestRefusedError, match=r"fix: check gcp\.image"):
            await provider.launch(request_for(offer, spot=False, job_id=6))
        assert fake.instances == {} and fake.calls["insert"] == 1
    finally:
        await provider.aclose()

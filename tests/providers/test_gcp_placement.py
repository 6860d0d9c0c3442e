"""GCE gangs under a compact placement policy, against the fake Compute Engine that checks
resource policies as GCE does: what GCE refuses is refused, a gang's nodes carry its own
COLLOCATED policy, the policy goes with the last node, and a sweep deletes one a crash left."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from skyd.model import LaunchRequest, Offer
from skyd.providers.base import MANAGED, TAG_DAEMON, TAG_JOB, TAG_MANAGED
from skyd.providers.gcp import GcpConfig, GcpProvider
from skyd.providers.gcp.placement import tags_of
from skyd.testing.fake_gce import FakeGce
from tests.providers.gangs import gang_request

PROJECT = "lab"
ZONE = "us-central1-a"
REGION = "us-central1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGce]:
    gce = FakeGce()
    await gce.start()
    yield gce
    await gce.stop()


@pytest.fixture
async def provider(fake: FakeGce) -> AsyncIterator[GcpProvider]:
    gcp = GcpProvider(
        GcpConfig(project=PROJECT, endpoint=fake.endpoint, anonymous=True, retry_deadline_s=0)
    )
    yield gcp
    await gcp.aclose()


def gang(machine: str, job_id: int, nodes: int = 2) -> LaunchRequest:
    offer = Offer("gcp", REGION, ZONE, machine, "", 0, 8, 32.0, 97_100, 23_500)
    return gang_request(offer, job_id, nodes)


async def rest(fake: FakeGce, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{fake.endpoint}/compute/v1/projects/{PROJECT}/{path}", json=body
        ) as r,
    ):
        return r.status, await r.json()


def instance(name: str, machine: str, policy: str) -> dict[str, Any]:
    return {
        "name": name,
        "machineType": f"zones/{ZONE}/machineTypes/{machine}",
        "disks": [
            {
                "boot": True,
                "initializeParams": {
                    "sourceImage": "projects/debian-cloud/global/images/family/debian-12"
                },
            }
        ],
        "networkInterfaces": [{"network": "global/networks/default"}],
        "resourcePolicies": [policy],
    }


async def test_the_fake_refuses_what_gce_refuses(fake: FakeGce) -> None:
    policies = f"regions/{REGION}/resourcePolicies"
    compact = {"name": "pg1", "groupPlacementPolicy": {"collocation": "COLLOCATED", "vmCount": 2}}
    status, op = await rest(fake, "POST", policies, compact)
    assert status == 200 and op["operationType"] == "insert", op
    status, _ = await rest(fake, "POST", f"regions/{REGION}/operations/{op['name']}/wait")
    assert status == 200
    status, err = await rest(fake, "POST", policies, compact)
    assert (status, err["error"]["errors"][0]["reason"]) == (409, "alreadyExists")
    # the spec's own field names and enums
    bad_enum = {"name": "pg2", "groupPlacementPolicy": {"collocation": "CLOSE"}}
    status, err = await rest(fake, "POST", policies, bad_enum)
    assert status == 400 and "CLOSE" in err["error"]["message"], err
    unknown = {"name": "pg2", "groupPlacement": {"collocation": "COLLOCATED"}}
    status, err = await rest(fake, "POST", policies, unknown)
    assert status == 400 and 'Unknown name "groupPlacement"' in err["error"]["message"], err
    status, err = await rest(fake, "POST", policies, {"name": "pg2"})
    assert status == 400 and "Exactly one of" in err["error"]["message"], err
    status, err = await rest(fake, "POST", "regions/mars-north1/resourcePolicies", compact)
    assert status == 400 and "Unknown region" in err["error"]["message"], err
    link = f"projects/{PROJECT}/regions/{REGION}/resourcePolicies/pg1"
    inserts = f"zones/{ZONE}/instances"
    # n1 cannot be packed close; a policy of another region or none at all is refused
    status, err = await rest(fake, "POST", inserts, instance("a", "n1-standard-8", link))
    assert status == 400 and "Compact placement" in err["error"]["message"], err
    other = f"projects/{PROJECT}/regions/europe-west4/resourcePolicies/pg1"
    status, err = await rest(fake, "POST", inserts, instance("a", "n2-standard-8", other))
    assert status == 400 and "same region" in err["error"]["message"], err
    status, err = await rest(fake, "POST", inserts, instance("a", "n2-standard-8", link + "x"))
    assert status == 404, err
    for name in ("a", "b"):
        status, _ = await rest(fake, "POST", inserts, instance(name, "n2-standard-8", link))
        assert status == 200
    status, err = await rest(fake, "POST", inserts, instance("c", "n2-standard-8", link))
    assert status == 400 and "vmCount" in err["error"]["message"], err  # holds 2 at most
    status, err = await rest(fake, "DELETE", f"{policies}/pg1")
    assert (status, err["error"]["errors"][0]["reason"]) == (400, "resourceInUseByAnotherResource")
    assert {"a", "b"} <= {k[2] for k in fake.instances}


async def test_a_gang_runs_under_its_own_compact_policy_which_goes_with_it(
    fake: FakeGce, provider: GcpProvider
) -> None:
    request = gang("n2-standard-8", job_id=5)
    launched = await provider.launch(request)
    again = await provider.launch(request)  # a retried launch: same nodes, same policy
    assert [i.instance_id for i in again] == [i.instance_id for i in launched]
    [(key, policy)] = list(fake.policies.policies.items())
    assert key[:2] == (PROJECT, REGION) and policy["groupPlacementPolicy"] == {
        "collocation": "COLLOCATED"
    }
    tags = tags_of(policy["description"])
    assert tags[TAG_MANAGED] == MANAGED and tags[TAG_JOB] == "5" and tags[TAG_DAEMON] == "lab-a"
    nodes = [fake.instances[(PROJECT, ZONE, i.instance_id.split("/")[1])] for i in launched]
    assert len(nodes) == 2
    assert {json.dumps(n["resourcePolicies"]) for n in nodes} == {
        json.dumps([f"projects/{PROJECT}/regions/{REGION}/resourcePolicies/{key[2]}"])
    }
    await provider.terminate([launched[0].instance_id])
    assert len(fake.policies.policies) == 1  # still the other node's
    await provider.terminate([launched[1].instance_id])
    assert fake.policies.policies == {}


async def test_machines_that_cannot_be_packed_launch_without_a_policy(
    fake: FakeGce, provider: GcpProvider
) -> None:
    # what the launch event records: the policy, or why there is none
    assert provider.placement_note(gang("n1-standard-8", job_id=6)) == (
        "no placement policy: machine series n1 does not support compact placement policies; "
        "launched without one"
    )
    assert provider.placement_note(gang("n2-standard-8", job_id=6)).startswith(
        "under compact placement policy skyd-pg-6-"
    )
    launched = await provider.launch(gang("n1-standard-8", job_id=6))
    assert len(launched) == 2 and fake.policies.policies == {}
    assert all("resourcePolicies" not in i for i in fake.instances.values())


async def test_a_sweep_deletes_a_policy_a_crash_left(fake: FakeGce, provider: GcpProvider) -> None:
    running = await provider.launch(gang("n2-standard-8", job_id=9))
    crashed = {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-a", TAG_JOB: "10"}
    await provider.policies.ensure(REGION, "skyd-pg-10-abc", crashed)
    await provider.policies.ensure(
        REGION, "skyd-pg-11-abc", {TAG_MANAGED: MANAGED, TAG_DAEMON: "b"}
    )
    mine = {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-a"}
    assert await provider.sweep_placement(mine) == [f"{REGION}/skyd-pg-10-abc"]
    # a restarted daemon no longer knows which policy its gang uses: GCE keeps it in use
    fresh = GcpProvider(provider.config)
    try:
        assert await fresh.sweep_placement(mine) == []
        await fresh.terminate([i.instance_id for i in running])
        assert len(fake.policies.policies) == 2  # the gang's, until the next sweep
        swept = await fresh.sweep_placement(mine)
    finally:
        await fresh.aclose()
    assert len(swept) == 1 and swept[0].startswith(f"{REGION}/skyd-pg-9-")
    assert [k[2] for k in fake.policies.policies] == ["skyd-pg-11-abc"]

"""AWS gangs in a cluster placement group, against moto behind the proxy that keeps the
placement groups (moto has none): what EC2 refuses is refused, a gang lands in its own
group, the group goes with its last instance, and a sweep deletes one a crash left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from skyd.model import LaunchRequest, Offer
from skyd.providers.aws import AwsConfig, AwsProvider
from skyd.providers.aws.placement import ensure_group
from skyd.providers.base import MANAGED, TAG_DAEMON, TAG_JOB, TAG_MANAGED
from skyd.testing.moto_ec2 import MotoEc2, MotoServerThread
from tests.providers.gangs import gang_request

REGION = "us-east-1"
AMI = "ami-12c6146b"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServerThread]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            env.setenv(key, value)
        env.delenv("AWS_PROFILE", raising=False)
        server = MotoServerThread()
        server.start()
        yield server
        server.stop()


@pytest.fixture
async def proxy(moto_server: MotoServerThread) -> AsyncIterator[MotoEc2]:
    moto_server.reset()
    proxy = MotoEc2(moto_server)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def provider(proxy: MotoEc2) -> AsyncIterator[AwsProvider]:
    aws = AwsProvider(
        AwsConfig(
            regions=(REGION,),
            endpoint_url=proxy.endpoint_url,
            default_image_id=AMI,
            cleanup_timeout_s=0,
        )
    )
    yield aws
    await aws.aclose()


class Sdk:
    """boto3 against the proxy, each call in a thread (the proxy serves on this loop)."""

    def __init__(self, proxy: MotoEc2) -> None:
        self._ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=proxy.endpoint_url)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._ec2, name)

        async def call(**kwargs: Any) -> Any:
            return await asyncio.to_thread(method, **kwargs)

        return call


def sdk(proxy: MotoEc2) -> Any:
    return Sdk(proxy)


def gang(instance_type: str, job_id: int, nodes: int = 2) -> LaunchRequest:
    offer = Offer("aws", REGION, "use1-az1", instance_type, "", 0, 2, 4.0, 96_000, 30_000)
    return gang_request(offer, job_id, nodes)


async def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        await call
    return str(caught.value.response["Error"]["Code"])


async def test_the_fake_refuses_what_ec2_refuses(proxy: MotoEc2) -> None:
    ec2 = sdk(proxy)
    made = (
        await ec2.create_placement_group(
            GroupName="pg1",
            Strategy="cluster",
            TagSpecifications=[
                {"ResourceType": "placement-group", "Tags": [{"Key": "a", "Value": "b"}]}
            ],
        )
    )["PlacementGroup"]
    assert (made["GroupName"], made["Strategy"], made["State"]) == ("pg1", "cluster", "available")
    assert made["GroupId"].startswith("pg-") and made["Tags"] == [{"Key": "a", "Value": "b"}]
    assert await code_of(ec2.create_placement_group(GroupName="pg1", Strategy="cluster")) == (
        "InvalidPlacementGroup.Duplicate"
    )
    assert await code_of(ec2.create_placement_group(GroupName="pg2", Strategy="tight")) == (
        "InvalidParameterValue"
    )
    assert await code_of(
        ec2.create_placement_group(GroupName="pg2", Strategy="cluster", PartitionCount=2)
    ) == ("InvalidParameterCombination")
    launch = {"ImageId": AMI, "MinCount": 2, "MaxCount": 2}
    unknown = {"GroupName": "nope", "AvailabilityZone": "us-east-1a"}
    assert await code_of(
        ec2.run_instances(InstanceType="c5.large", Placement=unknown, **launch)
    ) == ("InvalidPlacementGroup.Unknown")
    into = {"GroupName": "pg1", "AvailabilityZone": "us-east-1a"}
    assert await code_of(ec2.run_instances(InstanceType="t3.micro", Placement=into, **launch)) == (
        "InvalidParameterCombination"
    )
    assert proxy.calls["RunInstances"] == 2 and not (await ec2.describe_instances())["Reservations"]
    ids = [
        i["InstanceId"]
        for i in (await ec2.run_instances(InstanceType="c5.large", Placement=into, **launch))[
            "Instances"
        ]
    ]
    described = (await ec2.describe_instances(InstanceIds=ids))["Reservations"][0]["Instances"]
    assert {i["Placement"]["GroupName"] for i in described} == {"pg1"}
    assert await code_of(ec2.delete_placement_group(GroupName="pg1")) == (
        "InvalidPlacementGroup.InUse"
    )
    await ec2.terminate_instances(InstanceIds=ids)
    await ec2.delete_placement_group(GroupName="pg1")
    assert await code_of(ec2.describe_placement_groups(GroupNames=["pg1"])) == (
        "InvalidPlacementGroup.Unknown"
    )


async def test_a_gang_lands_in_its_own_cluster_group_which_goes_with_it(
    proxy: MotoEc2, provider: AwsProvider
) -> None:
    ec2 = sdk(proxy)
    request = gang("c5.large", job_id=5)
    launched = await provider.launch(request)
    assert [i.instance_id for i in await provider.launch(request)] == [
        i.instance_id for i in launched
    ]  # a retried launch finds the first one's instances (and group)
    [group] = (await ec2.describe_placement_groups())["PlacementGroups"]
    assert group["Strategy"] == "cluster"
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert tags[TAG_MANAGED] == MANAGED and tags[TAG_JOB] == "5" and tags[TAG_DAEMON] == "lab-a"
    ids = [i.instance_id.split("/")[1] for i in launched]
    described = (await ec2.describe_instances(InstanceIds=ids))["Reservations"][0]["Instances"]
    assert len(ids) == 2 and {i["Placement"]["GroupName"] for i in described} == {
        group["GroupName"]
    }
    # the scheduler releases a gang's instances one by one: the group stays for the last
    await provider.terminate([launched[0].instance_id])
    assert len((await ec2.describe_placement_groups())["PlacementGroups"]) == 1
    await provider.terminate([launched[1].instance_id])
    assert (await ec2.describe_placement_groups())["PlacementGroups"] == []
    assert await provider.orphaned_resources() == []


async def test_types_a_cluster_group_refuses_launch_without_one(
    proxy: MotoEc2, provider: AwsProvider
) -> None:
    ec2 = sdk(proxy)
    # what the launch event records: the group, or why there is none
    assert provider.placement_note(gang("t3.micro", job_id=6)).startswith(
        "no placement group: t3.micro cannot join a cluster placement group"
    )
    assert provider.placement_note(gang("c5.large", job_id=6)) == (
        "in cluster placement group skyd-pg-skyd-6-1"
    )
    launched = await provider.launch(gang("t3.micro", job_id=6))
    assert len(launched) == 2
    assert (await ec2.describe_placement_groups())["PlacementGroups"] == []
    assert proxy.calls["CreatePlacementGroup"] == 0
    single = await provider.launch(gang("c5.large", job_id=7, nodes=1))
    assert len(single) == 1 and proxy.calls["CreatePlacementGroup"] == 0


async def test_a_failed_launch_leaves_no_group(proxy: MotoEc2, provider: AwsProvider) -> None:
    from skyd.errors import ProviderError
    from skyd.testing.moto_ec2 import Ec2Fault

    proxy.add_fault(Ec2Fault("RunInstances", "InsufficientInstanceCapacity", 500, times=None))
    with pytest.raises(ProviderError):
        await provider.launch(gang("c5.large", job_id=8))
    assert proxy.calls["CreatePlacementGroup"] == 1
    assert (await sdk(proxy).describe_placement_groups())["PlacementGroups"] == []


async def test_a_sweep_deletes_a_group_a_crash_left_and_keeps_the_used_ones(
    proxy: MotoEc2, provider: AwsProvider
) -> None:
    ec2 = sdk(proxy)
    running = await provider.launch(gang("c5.large", job_id=9))
    # a daemon killed between creating a gang's group and launching into it
    crashed = {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-a", TAG_JOB: "10"}
    other_daemon = {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-b", TAG_JOB: "11"}
    await ensure_group(
        ec2_async := await provider.clients.client(REGION), "skyd-pg-skyd-10-1", crashed
    )
    await ensure_group(ec2_async, "skyd-pg-skyd-11-1", other_daemon)
    assert sorted(await provider.orphaned_resources()) == [
        f"{REGION}/skyd-pg-skyd-10-1",
        f"{REGION}/skyd-pg-skyd-11-1",
    ]
    mine = {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-a"}
    assert await provider.sweep_placement(mine) == [f"{REGION}/skyd-pg-skyd-10-1"]
    names = sorted(
        g["GroupName"] for g in (await ec2.describe_placement_groups())["PlacementGroups"]
    )
    assert names == ["skyd-pg-skyd-11-1", "skyd-pg-skyd-9-1"]  # in use; another daemon's
    assert await provider.sweep_placement(mine) == []
    await provider.terminate([i.instance_id for i in running])
    names = [g["GroupName"] for g in (await ec2.describe_placement_groups())["PlacementGroups"]]
    assert names == ["skyd-pg-skyd-11-1"]


async def test_reconcile_deletes_the_group_a_killed_daemon_left(
    proxy: MotoEc2, provider: AwsProvider, tmp_path: Path
) -> None:
    from skyd.clock import SystemClock
    from skyd.scheduler.reconcile import reconcile
    from skyd.store import open_store

    ec2 = sdk(proxy)
    # killed (kill -9) after CreatePlacementGroup, before RunInstances: nothing records it
    await ensure_group(
        await provider.clients.client(REGION),
        "skyd-pg-skyd-12-1",
        {TAG_MANAGED: MANAGED, TAG_DAEMON: "lab-a", TAG_JOB: "12"},
    )
    store = open_store(tmp_path)
    try:
        report = await reconcile(store, {"aws": provider}, SystemClock(), daemon_id="lab-a")
    finally:
        store.close()
    assert report.errors == {}
    assert (await ec2.describe_placement_groups())["PlacementGroups"] == []

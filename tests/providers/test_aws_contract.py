"""The provider contract for the AWS adapter, against moto's EC2 server behind a fault proxy."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest

from skyd.clock import VirtualClock
from skyd.errors import ProviderError
from skyd.model import InstanceState, Offer
from skyd.providers.aws import AwsConfig, AwsProvider
from skyd.providers.aws.errors import translate_error_code
from skyd.providers.aws.provider import ec2_client_token, split_instance_key
from skyd.providers.base import MANAGED, TAG_MANAGED
from skyd.testing.ec2_fixtures import fresh_ec2
from skyd.testing.moto_ec2 import Ec2Fault, MotoEc2, MotoServerThread
from tests.providers.contract import Fault, ProviderContract, request_for

REGION = "us-east-1"
ZONE_ID = "use1-az1"  # moto names it us-east-1b
MOTO_AMI = "ami-12c6146b"

_FAULTS: dict[Fault, Ec2Fault] = {
    Fault.CAPACITY: Ec2Fault(
        "RunInstances",
        "InsufficientInstanceCapacity",
        500,
        params={"Placement.AvailabilityZone": "us-east-1b"},
    ),
    Fault.QUOTA: Ec2Fault("RunInstances", "VcpuLimitExceeded", 400),
    Fault.AUTH: Ec2Fault("RunInstances", "UnauthorizedOperation", 403),
    Fault.THROTTLE: Ec2Fault("RunInstances", "RequestLimitExceeded", 503),
    Fault.SERVER_ERROR: Ec2Fault("RunInstances", "InternalError", 500),
    Fault.TIMEOUT: Ec2Fault("RunInstances", hang=True),
}


class AwsHarness:
    def __init__(self, provider: AwsProvider, proxy: MotoEc2, moto: MotoServerThread) -> None:
        self.provider = provider
        self._proxy = proxy
        self._direct = boto3.client("ec2", region_name=REGION, endpoint_url=moto.url)

    def offer(self, spot: bool) -> Offer:
        return Offer("aws", REGION, ZONE_ID, "t3.micro", "", 0, 2, 1.0, 10_400, 3_100)

    sdk_retries = True

    def inject(self, fault: Fault, offer: Offer, persistent: bool = False) -> None:
        template = _FAULTS[fault]
        self._proxy.add_fault(
            Ec2Fault(
                template.action,
                template.code,
                template.status,
                params=dict(template.params),
                hang=template.hang,
                times=None if persistent else 1,
            )
        )

    def clear_faults(self) -> None:
        self._proxy.clear_faults()

    async def preempt(self, instance_id: str) -> None:
        region, ec2_id = split_instance_key(instance_id)
        self._proxy.preempt(ec2_id, region)

    async def leftovers(self) -> list[str]:
        managed = [{"Name": f"tag:{TAG_MANAGED}", "Values": [MANAGED]}]
        out: list[str] = []
        for page in self._direct.get_paginator("describe_instances").paginate(Filters=managed):
            for reservation in page["Reservations"]:
                out += [
                    i["InstanceId"]
                    for i in reservation["Instances"]
                    if i["State"]["Name"] != "terminated"
                ]
        out += [
            g["GroupId"]
            for g in self._direct.describe_security_groups(Filters=managed)["SecurityGroups"]
        ]
        out += [k["KeyName"] for k in self._direct.describe_key_pairs(Filters=managed)["KeyPairs"]]
        # placement groups live in the proxy (moto has none)
        out += [f"pg:{name}" for _, name in self._proxy.placement_groups.groups]
        volumes = self._direct.describe_volumes(Filters=managed)["Volumes"]
        out += [v["VolumeId"] for v in volumes if v["State"] != "deleted"]
        return out

    def create_calls(self) -> int:
        return self._proxy.calls["RunInstances"]


@pytest.fixture
async def proxy(moto_server: MotoServerThread) -> AsyncIterator[MotoEc2]:
    async with fresh_ec2(moto_server) as proxy:
        yield proxy


@pytest.fixture
async def harness(
    proxy: MotoEc2, moto_server: MotoServerThread, aws_test_credentials: None
) -> AsyncIterator[AwsHarness]:
    config = AwsConfig(
        regions=(REGION,),
        endpoint_url=proxy.endpoint_url,
        default_image_id=MOTO_AMI,
        ssh_public_key=_PUBLIC_KEY,
        # Short enough to keep the hang fault quick, long enough for a busy CI machine.
        request_timeout_s=5.0,
        connect_timeout_s=5.0,
        sdk_max_attempts=2,
        cleanup_timeout_s=0,
    )
    provider = AwsProvider(config, clock=VirtualClock())
    yield AwsHarness(provider, proxy, moto_server)
    await provider.aclose()


class TestAwsContract(ProviderContract):
    pass


async def test_launch_tags_every_resource_and_uses_zone_name(harness: AwsHarness) -> None:
    offer = harness.offer(spot=True)

    launched = await harness.provider.launch(request_for(offer, spot=True, job_id=21))
    inst = launched[0]
    assert inst.zone == ZONE_ID
    raw: Any = harness._direct.describe_instances(InstanceIds=[inst.instance_id.split("/")[1]])
    described = raw["Reservations"][0]["Instances"][0]
    assert described["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert described["InstanceLifecycle"] == "spot"
    assert described["KeyName"] == "skyd-c21"
    assert inst.ssh_user == "ubuntu"  # read from the image's name (DescribeImages)
    # In the region's default VPC, on its subnet in that zone, with a public address.
    (vpc,) = harness._direct.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])[
        "Vpcs"
    ]
    (nic,) = described["NetworkInterfaces"]
    (subnet,) = harness._direct.describe_subnets(SubnetIds=[nic["SubnetId"]])["Subnets"]
    assert (subnet["VpcId"], subnet["AvailabilityZone"]) == (vpc["VpcId"], "us-east-1b")
    assert described.get("PublicIpAddress")
    assert [g["GroupName"] for g in nic["Groups"]] == ["skyd-c21"]
    group_id = nic["Groups"][0]["GroupId"]
    (group,) = harness._direct.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["VpcId"] == vpc["VpcId"]
    rules = {(r["IpProtocol"], r.get("FromPort")) for r in group["IpPermissions"]}
    assert rules == {("tcp", 22), ("-1", None)}
    peers = [p["GroupId"] for r in group["IpPermissions"] for p in r.get("UserIdGroupPairs", [])]
    assert peers == [group_id]  # nodes of the cluster reach each other on any port
    await harness.provider.terminate([inst.instance_id])


async def test_gpu_offer_boots_the_deep_learning_ami_from_its_ssm_parameter(
    harness: AwsHarness,
) -> None:
    from skyd.testing.moto_ec2 import STOCK_IMAGES

    offer = Offer("aws", REGION, ZONE_ID, "g4dn.xlarge", "T4", 1, 4, 16, 526_000, 160_000)
    request = dataclasses.replace(request_for(offer, spot=False, job_id=28), disk_size_gib=120)
    [inst] = await harness.provider.launch(request)
    raw: Any = harness._direct.describe_instances(InstanceIds=[inst.instance_id.split("/")[1]])
    described = raw["Reservations"][0]["Instances"][0]
    dlami = next(i for i in STOCK_IMAGES if "deeplearning" in i.parameter)
    assert described["ImageId"] == dlami.ami_id
    # The root volume size went to the device the image names, not a fixed /dev/sda1.
    assert harness._proxy.calls["DescribeImages"] == 1 and inst.ssh_user == "ubuntu"
    await harness.provider.terminate([inst.instance_id])
    assert await harness.leftovers() == []


async def test_a_region_without_a_default_vpc_is_refused_with_the_fix(
    harness: AwsHarness,
) -> None:
    from skyd.errors import RequestRefusedError

    (vpc,) = harness._direct.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])[
        "Vpcs"
    ]
    for subnet in harness._direct.describe_subnets()["Subnets"]:
        harness._direct.delete_subnet(SubnetId=subnet["SubnetId"])
    harness._direct.delete_vpc(VpcId=vpc["VpcId"])
    with pytest.raises(RequestRefusedError, match=r"no default VPC; fix: set aws\.vpc_ids"):
        await harness.provider.launch(request_for(harness.offer(spot=False), spot=False))


async def test_cluster_group_survives_until_last_instance_goes(harness: AwsHarness) -> None:
    offer = harness.offer(spot=False)
    first = await harness.provider.launch(request_for(offer, spot=False, job_id=22))
    second = await harness.provider.launch(request_for(offer, spot=False, job_id=22))
    await harness.provider.terminate([first[0].instance_id])
    # The second instance, its volume, and the shared group and key pair remain.
    assert len(await harness.leftovers()) == 4
    await harness.provider.terminate([second[0].instance_id])
    assert await harness.leftovers() == []


async def test_unknown_zone_blocks_that_zone(harness: AwsHarness) -> None:
    from skyd.errors import CapacityError

    offer = Offer("aws", REGION, "use1-az99", "t3.micro", "", 0, 2, 1.0, 10_400, None)
    with pytest.raises(CapacityError) as caught:
        await harness.provider.launch(request_for(offer, spot=False))
    assert caught.value.scope == "aws/us-east-1/use1-az99"
    assert await harness.leftovers() == []


@pytest.mark.parametrize(
    ("code", "status", "kind", "scope"),
    [
        ("SpotMaxPriceTooLow", 400, "CapacityError", "aws/r1/z1"),
        ("MaxSpotInstanceCountExceeded", 400, "QuotaError", "aws/r1"),
        ("InstanceLimitExceeded", 400, "QuotaError", "aws/r1"),
        ("AuthFailure", 401, "AuthError", "aws"),
        ("InvalidClientTokenId", 403, "AuthError", "aws"),
        ("Throttling", 400, "TransientError", "aws/r1"),
        ("SomethingNew", 502, "TransientError", "aws/r1"),
        ("InvalidParameterValue", 400, "RequestRefusedError", "aws/r1"),
        ("InvalidAMIID.NotFound", 400, "RequestRefusedError", "aws/r1"),
        ("OptInRequired", 401, "AuthError", "aws/r1"),
        ("SomethingNew", 400, "UnknownProviderError", "aws/r1"),
    ],
)
def test_error_code_table(code: str, status: int, kind: str, scope: str) -> None:
    error = translate_error_code(code, status, "msg", "r1", "z1")
    assert type(error).__name__ == kind
    assert isinstance(error, ProviderError)
    assert error.scope == scope


def test_client_token_is_stable_and_fits_ec2_limit() -> None:
    long_token = "x" * 200
    assert ec2_client_token(long_token) == ec2_client_token(long_token)
    assert len(ec2_client_token(long_token)) == 64
    assert ec2_client_token("job7-attempt1") == "job7-attempt1"


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="request_timeout_s"):
        AwsConfig(request_timeout_s=0)
    with pytest.raises(ValueError, match="endpoint_url"):
        AwsConfig(endpoint_url="localhost:5000")
    with pytest.raises(ValueError, match="regions"):
        AwsConfig(regions=())


def test_importing_the_package_does_not_load_the_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, skyd.providers.aws; print('aioboto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMb0MkPBA9kLE9cMhpY8NWmZlOJZl4X1I3A3cvtvYRTo skyd-test"
)


def test_fast_timestamp_parser_matches_botocore() -> None:
    from botocore.utils import parse_timestamp as botocore_parse

    from skyd.providers.aws.sdk import parse_timestamp

    for text in ("2026-11-22T10:50:46.000Z", "2026-11-22T10:50:46+00:00", "2026-11-22T10:50:46"):
        assert parse_timestamp(text) == botocore_parse(text)
    assert parse_timestamp("Sun, 22 Nov 2026 10:50:46 GMT") == botocore_parse(
        "Sun, 22 Nov 2026 10:50:46 GMT"
    )


async def test_orphaned_groups_and_keys_are_reported(harness: AwsHarness) -> None:
    launched = await harness.provider.launch(
        request_for(harness.offer(spot=False), spot=False, job_id=23)
    )
    assert await harness.provider.orphaned_resources() == []
    # Someone terminates the instance behind skyd's back: its group and key stay behind.
    harness._direct.terminate_instances(InstanceIds=[launched[0].instance_id.split("/")[1]])
    orphans = await harness.provider.orphaned_resources()
    assert sorted(o.split("/")[1].split("-")[0] for o in orphans) == ["sg", "skyd"]
    await harness.provider.terminate([launched[0].instance_id])
    assert await harness.provider.orphaned_resources() == []
    assert await harness.leftovers() == []


async def test_restarted_adapter_reports_zone_ids(harness: AwsHarness) -> None:
    launched = await harness.provider.launch(
        request_for(harness.offer(spot=False), spot=False, job_id=24)
    )
    fresh = AwsProvider(harness.provider.config, clock=VirtualClock())
    try:
        (found,) = await fresh.instances({"skyd-job": "24"})
        assert found.instance_id == launched[0].instance_id
        assert found.zone == ZONE_ID
        # a daemon restarted between launch and record adopts the VM from this listing: it
        # must log in as the image's user, as the launch would have said (#13 chaos)
        assert found.ssh_user == "ubuntu"
    finally:
        await fresh.aclose()
    await harness.provider.terminate([launched[0].instance_id])


async def test_concurrent_launches_share_one_cluster_group(harness: AwsHarness) -> None:
    import asyncio

    offer = harness.offer(spot=False)
    first, second = await asyncio.gather(
        harness.provider.launch(request_for(offer, spot=False, job_id=25)),
        harness.provider.launch(request_for(offer, spot=False, job_id=25)),
    )
    groups = harness._direct.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["skyd-c25"]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    await harness.provider.terminate([first[0].instance_id, second[0].instance_id])
    assert await harness.leftovers() == []


async def test_describe_by_tags_reads_full_records_only_for_ended_instances(
    harness: AwsHarness,
) -> None:
    offer = harness.offer(spot=True)
    running = await harness.provider.launch(request_for(offer, spot=True, job_id=26))
    taken = await harness.provider.launch(request_for(offer, spot=True, job_id=26))
    await harness.preempt(taken[0].instance_id)
    before = harness._proxy.calls["DescribeInstances"]
    states = await harness.provider.describe(tags={"skyd-job": "26"})
    assert states == {
        running[0].instance_id: InstanceState.RUNNING,
        taken[0].instance_id: InstanceState.PREEMPTED,
    }
    # One full DescribeInstances, for the one instance that ended; none for the running one.
    assert harness._proxy.calls["DescribeInstances"] - before == 1
    await harness.provider.terminate([running[0].instance_id, taken[0].instance_id])


async def test_run_instances_that_acted_but_timed_out_is_not_doubled(harness: AwsHarness) -> None:
    harness._proxy.add_fault(Ec2Fault("RunInstances", hang=True, after_forward=True))
    request = request_for(harness.offer(spot=False), spot=False, job_id=27)
    # The instance exists although the answer was lost: botocore's retry carries the same
    # ClientToken, so EC2 answers with that instance instead of launching a second.
    launched = await harness.provider.launch(request)
    assert harness._proxy.calls["RunInstances"] == 2
    assert list(await harness.provider.describe(tags={"skyd-job": "27"})) == [
        launched[0].instance_id
    ]
    await harness.provider.terminate([launched[0].instance_id])
    assert await harness.leftovers() == []

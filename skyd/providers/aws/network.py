"""Where an AWS launch lands on the network: the VPC and subnet, the cluster's security
group (SSH from the configured CIDRs, any port between its nodes) and its key pair."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyd.errors import CapacityError, RequestRefusedError
from skyd.providers.aws.errors import CLOUD
from skyd.providers.base import TAG_CLUSTER, TAG_DAEMON, TAG_JOB, TAG_MANAGED

# Tags a security group or key pair shared by one cluster carries (not per-attempt ones).
SHARED_TAGS = (TAG_MANAGED, TAG_DAEMON, TAG_CLUSTER, TAG_JOB)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


async def find_network(
    ec2: Any, vpc_id: str | None, region: str, zone_id: str | None, zone_name: str | None
) -> tuple[str, str]:
    """The VPC (configured, else the region's default one) and its subnet in the zone
    with the most free addresses."""
    scope = f"{CLOUD}/{region}"
    if vpc_id is None:
        found = await ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
        vpcs = found.get("Vpcs", [])
        if not vpcs:
            raise RequestRefusedError(
                f"aws: region {region} has no default VPC; fix: set "
                f"aws.vpc_ids[{region!r}] to a VPC with a subnet in each zone to use",
                scope=scope,
            )
        vpc_id = str(vpcs[0]["VpcId"])
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
    if zone_name:
        filters.append({"Name": "availability-zone", "Values": [zone_name]})
    subnets = (await ec2.describe_subnets(Filters=filters)).get("Subnets", [])
    if not subnets:
        where = f"zone {zone_name}" if zone_name else f"region {region}"
        # Other zones of the region may have one: block only this zone.
        raise CapacityError(
            f"aws: VPC {vpc_id} has no subnet in {where}; add one to launch there",
            scope=f"{scope}/{zone_id}" if zone_id else scope,
        )
    best = max(subnets, key=lambda s: int(s.get("AvailableIpAddressCount", 0)))
    return vpc_id, str(best["SubnetId"])


async def ensure_security_group(
    ec2: Any, name: str, tags: Mapping[str, str], vpc_id: str, ssh_cidrs: tuple[str, ...]
) -> str:
    """The cluster's group in that VPC, created once (a concurrent creator is tolerated)."""
    group_tags = {k: v for k, v in tags.items() if k in SHARED_TAGS}
    in_vpc = [
        {"Name": "group-name", "Values": [name]},
        {"Name": "vpc-id", "Values": [vpc_id]},
    ]
    found = await ec2.describe_security_groups(Filters=in_vpc)
    if found.get("SecurityGroups"):
        return str(found["SecurityGroups"][0]["GroupId"])
    try:
        created = await ec2.create_security_group(
            GroupName=name,
            VpcId=vpc_id,
            Description="skyd: ssh access to this job's instances",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(group_tags)}],
        )
    except Exception as exc:
        if "InvalidGroup.Duplicate" not in str(exc):
            raise
        # Another launch of the same cluster created it a moment ago.
        found = await ec2.describe_security_groups(Filters=in_vpc)
        return str(found["SecurityGroups"][0]["GroupId"])
    group_id = str(created["GroupId"])
    await ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": c} for c in ssh_cidrs],
            },
            # Nodes of one cluster talk freely (torchrun, NCCL pick their own ports).
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]},
        ],
    )
    return group_id


async def ensure_key_pair(ec2: Any, name: str, tags: Mapping[str, str], public_key: str) -> str:
    """The daemon's public key imported as the cluster's key pair (EC2's way to deliver it)."""
    key_tags = {k: v for k, v in tags.items() if k in SHARED_TAGS}
    found = await ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])
    if not found.get("KeyPairs"):
        try:
            await ec2.import_key_pair(
                KeyName=name,
                PublicKeyMaterial=public_key.encode(),
                TagSpecifications=[{"ResourceType": "key-pair", "Tags": tag_list(key_tags)}],
            )
        except Exception as exc:
            if "InvalidKeyPair.Duplicate" not in str(exc):
                raise
    return name


def groups_of(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An instance's security groups, also those of its network interfaces (EC2 lists a
    launch's interface groups on the instance; moto only on the interface)."""
    groups = list(raw.get("SecurityGroups", []))
    for nic in raw.get("NetworkInterfaces", []):
        groups.extend(nic.get("Groups", []))
    return groups

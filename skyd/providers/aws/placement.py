"""Cluster placement groups for AWS gangs: N instances packed close in one zone.

A gang's attempt gets its own `cluster` placement group, named from its client token (so a
retried launch finds it again) and tagged like the instances (so a sweep after a crash can
find it); it is deleted once none of its instances is live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from skyd.providers.aws.network import tag_list

PREFIX = "skyd-pg-"
# Burstable and Mac instance types cannot go into a cluster placement group (EC2 user
# guide, "Placement group rules and limitations").
_NO_CLUSTER = re.compile(r"^(t2|t3|t3a|t4g|mac\d?(-m\d\w*)?)\.")


def group_name(ec2_token: str) -> str:
    """The placement group of one attempt: from its EC2 client token (≤ 64 ASCII chars)."""
    return PREFIX + ec2_token


def why_not_cluster(instance_type: str, num_nodes: int) -> str | None:
    """Why a launch goes without a cluster placement group (None: it uses one)."""
    if num_nodes < 2:
        return "a single node needs no placement group"
    if _NO_CLUSTER.match(instance_type):
        return (
            f"{instance_type} cannot join a cluster placement group (burstable and Mac "
            "instance types are not allowed); launched without one"
        )
    return None


async def ensure_group(ec2: Any, name: str, tags: Mapping[str, str]) -> None:
    """Create the group; one that already exists is this attempt's own (a retried launch)."""
    try:
        await ec2.create_placement_group(
            GroupName=name,
            Strategy="cluster",
            TagSpecifications=[{"ResourceType": "placement-group", "Tags": tag_list(tags)}],
        )
    except Exception as exc:
        if "InvalidPlacementGroup.Duplicate" not in str(exc):
            raise


def groups_in_use(raws: Iterable[Mapping[str, Any]]) -> set[str]:
    """The skyd placement groups these instances are in."""
    names = (str(r.get("Placement", {}).get("GroupName") or "") for r in raws)
    return {n for n in names if n.startswith(PREFIX)}


async def delete_group(ec2: Any, name: str) -> bool:
    """Delete the group: True when it is gone, False while EC2 still counts an instance in it."""
    try:
        await ec2.delete_placement_group(GroupName=name)
    except Exception as exc:
        if "InvalidPlacementGroup.Unknown" in str(exc):
            return True  # already gone: a repeated terminate
        if "InvalidPlacementGroup.InUse" in str(exc):
            return False
        raise
    return True


async def tagged_groups(ec2: Any, tags: Mapping[str, str]) -> list[str]:
    """Names of the placement groups carrying all of `tags`."""
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
    reply = await ec2.describe_placement_groups(Filters=filters)
    return [str(g["GroupName"]) for g in reply.get("PlacementGroups", [])]

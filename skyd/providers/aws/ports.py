"""`resources.ports` on EC2: ingress rules (TCP, from anywhere) on the launch's own security
group, so they close when the group is deleted with its instances; and the sweep of skyd's
groups a killed daemon left behind after their instances ended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from skyd.providers.base import MANAGED, TAG_DAEMON, TAG_JOB, TAG_MANAGED
from skyd.providers.ports import port_range


async def open_ports(ec2: Any, group_id: str, ports: Sequence[str]) -> None:
    """Allow the ports in (idempotent: a retried launch finds its rules there)."""
    permissions = []
    for port in ports:
        low, high = port_range(port)
        permissions.append(
            {
                "IpProtocol": "tcp",
                "FromPort": low,
                "ToPort": high,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "skyd: resources.ports"}],
            }
        )
    try:
        await ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    except Exception as exc:
        if "InvalidPermission.Duplicate" not in str(exc):
            raise


async def stale_groups(
    ec2: Any, used: set[str], daemon_id: str, busy_jobs: Sequence[int]
) -> list[str]:
    """This daemon's groups no live instance uses, except those of jobs launching now."""
    found = await ec2.describe_security_groups(
        Filters=[
            {"Name": f"tag:{TAG_MANAGED}", "Values": [MANAGED]},
            {"Name": f"tag:{TAG_DAEMON}", "Values": [daemon_id]},
        ]
    )
    busy = {str(j) for j in busy_jobs}
    stale = []
    for group in found.get("SecurityGroups", []):
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
        if group["GroupId"] in used or tags.get(TAG_JOB) in busy:
            continue
        stale.append(str(group["GroupId"]))
    return stale

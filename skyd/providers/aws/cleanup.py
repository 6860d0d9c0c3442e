"""What AWS launches leave beside the instances, and its removal: security groups, key
pairs and placement groups deleted once no live instance uses them, and the sweeps that
find those a crash left (PortSweeper, PlacementSweeper) or report them (orphans)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from contextlib import AbstractAsyncContextManager
from typing import Any

from skyd.clock import Clock
from skyd.providers.aws.config import AwsConfig
from skyd.providers.aws.network import groups_of
from skyd.providers.aws.placement import delete_group, groups_in_use, tagged_groups
from skyd.providers.aws.ports import stale_groups
from skyd.providers.base import MANAGED, TAG_MANAGED, managed_tags

# what EC2 calls a live instance (one that may still hold a group, key or placement group)
LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


class AwsCleanup:
    """The deletes and sweeps, through the provider's EC2 calls (errors already skyd's)."""

    def __init__(
        self,
        config: AwsConfig,
        clock: Clock,
        regions: Callable[[], list[str]],
        calls: Callable[[str], AbstractAsyncContextManager[Any]],
        describe_raw: Callable[[str, list[dict[str, Any]]], Any],
    ) -> None:
        self.config = config
        self._clock = clock
        self._regions = regions
        self._calls = calls
        self._describe_raw = describe_raw
        # placement groups of launches in flight in this process: a sweep leaves them be
        self.launching_groups: set[str] = set()

    async def release_unused(
        self, region: str, groups: set[str], keys: set[str], placement: Set[str] = frozenset()
    ) -> None:
        """Delete skyd's security groups, keys and placement groups once no live instance
        uses them.

        EC2 refuses to delete a group while an instance is still shutting down with it
        attached (DependencyViolation; InvalidPlacementGroup.InUse for a placement group),
        so those are retried until cleanup_timeout_s.
        """
        deadline = self._clock.now() + self.config.cleanup_timeout_s
        placement = set(placement)
        while groups or keys or placement:
            users = await self._describe_raw(
                region, [{"Name": "instance-state-name", "Values": LIVE_STATES}]
            )
            staying = [r for r in users if r.get("State", {}).get("Name") != "shutting-down"]
            used_groups = {g["GroupId"] for r in staying for g in groups_of(r)}
            used_keys = {r.get("KeyName") for r in staying}
            blocked: set[str] = set()
            async with self._calls(region) as ec2:
                for key in keys - used_keys:
                    await ec2.delete_key_pair(KeyName=key)
                keys = set()
                # one still holding a staying instance is left to that one's terminate
                waiting: set[str] = set()
                for name in placement - groups_in_use(staying):
                    if not await delete_group(ec2, name):
                        waiting.add(name)
                placement = waiting
                for group in groups - used_groups:
                    try:
                        await ec2.delete_security_group(GroupId=group)
                    except Exception as exc:
                        if "InvalidGroup.NotFound" in str(exc):
                            continue  # already gone: a repeated terminate
                        if "DependencyViolation" not in str(exc):
                            raise
                        blocked.add(group)
            groups = blocked
            if (not groups and not placement) or self._clock.now() >= deadline:
                return
            await self._clock.sleep(self.config.cleanup_poll_s)

    async def sweep_ports(self, daemon_id: str, busy_jobs: Sequence[int]) -> list[str]:
        """Delete this daemon's security groups (and the ports they open) that no live
        instance uses any more: a daemon killed between terminating the instances and
        deleting their group leaves it behind (see PortSweeper)."""
        deleted: list[str] = []
        for region in self._regions():
            users = await self._describe_raw(
                region, [{"Name": "instance-state-name", "Values": LIVE_STATES}]
            )
            used = {g["GroupId"] for r in users for g in groups_of(r)}
            async with self._calls(region) as ec2:
                stale = await stale_groups(ec2, used, daemon_id, busy_jobs)
            await self.release_unused(region, set(stale), set())
            deleted += [f"{region}/{g}" for g in stale]
        return deleted

    async def orphaned_resources(self) -> list[str]:
        """Security groups and key pairs carrying skyd tags that no live instance uses."""
        out: list[str] = []
        for region in self._regions():
            users = await self._describe_raw(
                region, [{"Name": "instance-state-name", "Values": LIVE_STATES}]
            )
            used_groups = {g["GroupId"] for r in users for g in groups_of(r)}
            used_keys = {r.get("KeyName") for r in users}
            managed = [{"Name": f"tag:{TAG_MANAGED}", "Values": [MANAGED]}]
            async with self._calls(region) as ec2:
                sgs = await ec2.describe_security_groups(Filters=managed)
                kps = await ec2.describe_key_pairs(Filters=managed)
            out += [
                f"{region}/{g['GroupId']}"
                for g in sgs.get("SecurityGroups", [])
                if g["GroupId"] not in used_groups
            ]
            out += [
                f"{region}/{k['KeyName']}"
                for k in kps.get("KeyPairs", [])
                if k["KeyName"] not in used_keys
            ]
            async with self._calls(region) as ec2:
                placement = await tagged_groups(ec2, managed_tags())
            out += [f"{region}/{n}" for n in placement if n not in groups_in_use(users)]
        return out

    async def sweep_placement(self, tags: Mapping[str, str]) -> list[str]:
        """Delete the placement groups carrying `tags` that no live instance is in and no
        launch of this process is filling (a crash between creating one and launching)."""
        deleted: list[str] = []
        for region in self._regions():
            async with self._calls(region) as ec2:
                names = set(await tagged_groups(ec2, tags)) - self.launching_groups
            if not names:
                continue  # the common case: one cheap call, no instance listing
            users = await self._describe_raw(
                region, [{"Name": "instance-state-name", "Values": LIVE_STATES}]
            )
            async with self._calls(region) as ec2:
                for name in sorted(names - groups_in_use(users)):
                    if await delete_group(ec2, name):
                        deleted.append(f"{region}/{name}")
        return deleted

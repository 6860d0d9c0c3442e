"""Proximity placement groups for Azure gangs: the VMs of one attempt in one datacenter.

The group is named from the attempt's client token (a retried launch PUTs the same one),
tagged like the VMs (a sweep after a crash finds it by its tags), and deleted once its
read-only `virtualMachines` list is empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from skyd.model import LaunchRequest
from skyd.providers.azure.arm import as_json
from skyd.providers.azure.errors import CLOUD, translate_exception
from skyd.providers.base import launch_tags

PREFIX = "skyd-ppg-"


def group_name(job_id: int, client_token: str) -> str:
    digest = hashlib.sha256(client_token.encode()).hexdigest()[:10]
    return f"{PREFIX}{job_id}-{digest}"


def group_body(region: str, zone: str, vm_size: str, tags: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "location": region,
        "tags": dict(tags),
        "properties": {
            "proximityPlacementGroupType": "Standard",
            # the size it will hold, so Azure picks a datacenter that has it
            "intent": {"vmSizes": [vm_size]},
        },
    }
    if zone:
        body["zones"] = [zone]
    return body


def holds_vms(group: Mapping[str, Any]) -> bool:
    return bool(group.get("properties", {}).get("virtualMachines"))


def has_tags(group: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    found = group.get("tags") or {}
    return str(group.get("name", "")).startswith(PREFIX) and all(
        found.get(k) == v for k, v in tags.items()
    )


class ProximityGroups:
    """The proximity placement group calls, through the provider's compute client."""

    def __init__(self, resource_group: str, client: Callable[[], Awaitable[Any]]) -> None:
        self.resource_group = resource_group
        self._client = client
        # groups of launches in flight in this process: a sweep leaves them be
        self.launching: set[str] = set()

    async def ensure(self, name: str, request: LaunchRequest) -> str:
        """PUT the gang's group (a retried launch PUTs the same one); its resource id."""
        offer = request.offer
        body = group_body(offer.region, offer.zone, offer.instance_type, launch_tags(request))
        client = await self._client()
        try:
            made = await client.proximity_placement_groups.create_or_update(
                self.resource_group, name, body
            )
        except Exception as exc:
            raise translate_exception(exc, offer.region, f"{CLOUD}/{offer.region}") from exc
        return str(as_json(made)["id"])

    async def release(self, name: str) -> bool:
        """Delete the group once no VM is in it; whether it is gone."""
        from azure.core.exceptions import ResourceNotFoundError

        client = await self._client()
        groups = client.proximity_placement_groups
        try:
            if holds_vms(as_json(await groups.get(self.resource_group, name))):
                return False
            await groups.delete(self.resource_group, name)
        except ResourceNotFoundError:
            return True
        except Exception as exc:
            if getattr(exc, "status_code", None) == 204:
                return True  # gone meanwhile (another node's terminate): the SDK wants a 200
            raise translate_exception(exc, None, None) from exc
        return True

    async def sweep(self, tags: Mapping[str, str]) -> list[str]:
        """Delete the groups carrying `tags` that hold no VM and no launch of this process
        is filling (a crash between creating one and launching into it)."""
        client = await self._client()
        try:
            listing = client.proximity_placement_groups.list_by_resource_group(self.resource_group)
            found = [as_json(g) async for g in listing]
        except Exception as exc:
            raise translate_exception(exc, None, None) from exc
        deleted: list[str] = []
        for group in found:
            name = str(group.get("name", ""))
            if not has_tags(group, tags) or holds_vms(group) or name in self.launching:
                continue
            if await self.release(name):
                deleted.append(f"{self.resource_group}/{name}")
        return deleted

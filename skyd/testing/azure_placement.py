"""Proximity placement groups for the fake Resource Manager: PUT / GET / list / DELETE of
`Microsoft.Compute/proximityPlacementGroups`, and what a VM PUT checks of the group it names.

Bodies are checked against the ProximityPlacementGroup model of the vendored
azure-compute.json (generated from azure-mgmt-compute's models for the api-version it
sends; see specs/PROVENANCE.md). Create and delete answer at once (no async operation), as
the SDK's non-LRO `create_or_update` / `delete` expect. The rules beyond the schema are
written from the proximity placement group documentation, not from a live answer: a VM
must be in its group's region (and zone, when the group names one), the group lists its
VMs in the read-only `virtualMachines`, and a group that still holds a VM cannot be
deleted (the fake answers 409 OperationNotAllowed in ARM's error shape; the real code may
differ, so skyd reads `virtualMachines` before it deletes rather than relying on it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from skyd.testing.azure_schema import check_put

PPGS = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/proximityPlacementGroups"
)


def _key_of(resource_id: str) -> tuple[str, str]:
    parts = resource_id.strip("/").split("/")
    return parts[3].lower(), parts[-1].lower()


@dataclass
class ProximityGroups:
    """Groups by (resource group, name), lower-cased as ARM compares names."""

    vms: dict[tuple[str, str], dict[str, Any]]
    error: Callable[..., web.Response]
    groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # every (group name, VM name) a VM PUT placed, kept after both are gone (for tests)
    placed: list[tuple[str, str]] = field(default_factory=list)

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get(PPGS, self._list)
        r.add_put(PPGS + "/{name}", self._put)
        r.add_get(PPGS + "/{name}", self._get)
        r.add_delete(PPGS + "/{name}", self._delete)

    def members(self, group_id: str) -> list[dict[str, str]]:
        return [
            {"id": vm["id"]}
            for vm in self.vms.values()
            if (vm["properties"].get("proximityPlacementGroup") or {}).get("id", "").lower()
            == group_id.lower()
        ]

    def check_vm(self, body: dict[str, Any], name: str) -> web.Response | None:
        """A VM PUT naming a group: the group exists, in the VM's region and zone."""
        ref = (body.get("properties", {}).get("proximityPlacementGroup") or {}).get("id")
        if ref is None:
            return None
        group = self.groups.get(_key_of(str(ref)))
        if group is None:
            return self.error(
                404, "NotFound", f"The proximity placement group '{ref}' could not be found."
            )
        location = str(body.get("location", ""))
        if group["location"].lower() != location.lower():
            return self.error(
                400,
                "InvalidParameter",
                f"The proximity placement group '{group['name']}' is in location "
                f"'{group['location']}', not in the virtual machine's location '{location}'.",
            )
        zones = group.get("zones") or []
        if zones and body.get("zones") != zones:
            return self.error(
                400,
                "InvalidParameter",
                f"The proximity placement group '{group['name']}' is in zone(s) "
                f"{zones}; the virtual machine asks for {body.get('zones') or 'no zone'}.",
            )
        self.placed.append((group["name"], name))
        return None

    def _view(self, group: dict[str, Any]) -> dict[str, Any]:
        view = dict(group)
        view["properties"] = dict(group["properties"], virtualMachines=self.members(group["id"]))
        return view

    async def _put(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["rg"].lower(), request.match_info["name"].lower())
        body = await request.json()
        error = check_put(
            "Microsoft.Compute",
            "proximityPlacementGroups",
            body,
            request.query.get("api-version", ""),
            key not in self.groups,
        )
        if error is not None:
            return web.json_response(error.body(), status=error.status)
        existed = key in self.groups
        properties = {
            k: v
            for k, v in body.get("properties", {}).items()
            if k not in ("virtualMachines", "availabilitySets", "virtualMachineScaleSets")
        }
        properties.setdefault("proximityPlacementGroupType", "Standard")
        self.groups[key] = {
            "id": request.path,
            "name": request.match_info["name"],
            "type": "Microsoft.Compute/proximityPlacementGroups",
            "location": body.get("location", ""),
            "tags": dict(body.get("tags", {})),
            "zones": body.get("zones", []),
            "properties": properties,
        }
        return web.json_response(self._view(self.groups[key]), status=200 if existed else 201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        group = self.groups.get(
            (request.match_info["rg"].lower(), request.match_info["name"].lower())
        )
        if group is None:
            return self.error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Compute/proximityPlacementGroups/"
                f"{request.match_info['name']}' under resource group "
                f"'{request.match_info['rg']}' was not found.",
            )
        return web.json_response(self._view(group))

    async def _list(self, request: web.Request) -> web.StreamResponse:
        rg = request.match_info["rg"].lower()
        return web.json_response(
            {"value": [self._view(g) for (r, _), g in sorted(self.groups.items()) if r == rg]}
        )

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["rg"].lower(), request.match_info["name"].lower())
        group = self.groups.get(key)
        if group is None:
            return web.Response(status=204)
        if self.members(group["id"]):
            return self.error(
                409,
                "OperationNotAllowed",
                f"Proximity placement group '{group['name']}' cannot be deleted while "
                "virtual machines are in it.",
            )
        del self.groups[key]
        return web.Response(status=200)

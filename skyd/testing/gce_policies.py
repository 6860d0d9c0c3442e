"""Resource policies for the fake Compute Engine: insert / get / list / aggregatedList /
delete of `regions/{region}/resourcePolicies`, their region operations, and what
instances.insert checks of an instance's `resourcePolicies`.

Bodies are checked against the ResourcePolicy message of the vendored spec (generated from
google-cloud-compute's descriptors, see specs/PROVENANCE.md). The rules beyond the schema
are written from Compute Engine's documentation of placement policies, not from a live
answer: a policy is regional and an instance can only use one of its own region; a policy
sets exactly one kind of policy; a compact (COLLOCATED) placement policy takes only the
machine series the documentation lists; `vmCount`, when set, caps the instances using it;
a policy in use cannot be deleted (resourceInUseByAnotherResource).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from skyd.testing.gce_rest import PUBLIC_BASE, error, now
from skyd.testing.gce_schema import GceError, check_policy_insert, compact_refusal

_LINK = re.compile(r"(?:projects/([^/]+)/)?regions/([^/]+)/resourcePolicies/([^/]+)$")


@dataclass
class Policies:
    """Policies by (project, region, name), and the operations their calls made."""

    next_id: Callable[[], int]
    policies: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    operations: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    refused: list[GceError] = field(default_factory=list)
    # who uses each policy: instance self links, kept by the fake's instance handlers
    users: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    # every (policy name, instance name) an insert attached, kept after both are gone
    placed: list[tuple[str, str]] = field(default_factory=list)

    def routes(self, app: web.Application, api: str) -> None:
        region = api + "/regions/{region}"
        r = app.router
        r.add_post(region + "/resourcePolicies", self._insert)
        r.add_get(region + "/resourcePolicies", self._list)
        r.add_get(region + "/resourcePolicies/{name}", self._get)
        r.add_delete(region + "/resourcePolicies/{name}", self._delete)
        r.add_get(api + "/aggregated/resourcePolicies", self._aggregated)
        r.add_get(region + "/operations/{op}", self._op)
        r.add_post(region + "/operations/{op}/wait", self._op)

    # -- what instances.insert asks --------------------------------------------------------

    def check_instance(self, project: str, zone: str, body: dict[str, Any]) -> GceError | None:
        """An instance's resourcePolicies: existing, of its region, and fit for its machine."""
        region = zone.rsplit("-", 1)[0]
        links = body.get("resourcePolicies", [])
        for index, link in enumerate(links):
            at = f"resource.resourcePolicies[{index}]"
            found = _LINK.search(str(link))
            if found is None:
                return GceError(400, "invalid", f"Invalid value for field '{at}': '{link}'.", at)
            where = (found.group(1) or project, found.group(2), found.group(3))
            if where[1] != region:
                return GceError(
                    400,
                    "invalid",
                    f"Invalid value for field '{at}': '{link}'. Resource policy must be in the "
                    f"same region as the instance ({region}).",
                    at,
                )
            policy = self.policies.get(where)
            if policy is None:
                path = f"projects/{where[0]}/regions/{where[1]}/resourcePolicies/{where[2]}"
                return GceError(404, "notFound", f"The resource '{path}' was not found")
            placement = policy.get("groupPlacementPolicy")
            if placement is not None:
                refused = compact_refusal(placement, str(body.get("machineType", "")), at)
                if refused is not None:
                    return refused
                cap = int(placement.get("vmCount", 0) or 0)
                if cap and len(self.users.get(where, set())) >= cap:
                    return GceError(
                        400,
                        "invalid",
                        f"Resource policy '{where[2]}' already holds its vmCount of {cap} "
                        "instances.",
                        at,
                    )
        return None

    def attach(self, project: str, inst: dict[str, Any]) -> None:
        for link in inst.get("resourcePolicies", []):
            found = _LINK.search(str(link))
            if found is not None:
                key = (found.group(1) or project, found.group(2), found.group(3))
                self.users.setdefault(key, set()).add(inst["selfLink"])
                self.placed.append((key[2], str(inst["name"])))

    def detach(self, self_link: str) -> None:
        for users in self.users.values():
            users.discard(self_link)

    # -- handlers ---------------------------------------------------------------------------

    async def _insert(self, request: web.Request) -> web.StreamResponse:
        project, region = request.match_info["project"], request.match_info["region"]
        try:
            body = await request.json()
        except ValueError:
            return error(400, "parseError", "Parse Error")
        refused = check_policy_insert(body, region)
        if refused is not None:
            self.refused.append(refused)
            return error(
                refused.status, refused.reason, refused.message, refused.field, refused.grpc_status
            )
        key = (project, region, str(body["name"]))
        link = f"{PUBLIC_BASE}/projects/{project}/regions/{region}/resourcePolicies/{key[2]}"
        if key in self.policies:
            return error(
                409, "alreadyExists", f"The resource '{link.split('/v1/')[1]}' already exists"
            )
        policy = dict(body)
        policy.update(
            kind="compute#resourcePolicy",
            id=str(self.next_id()),
            creationTimestamp=now(),
            region=f"{PUBLIC_BASE}/projects/{project}/regions/{region}",
            selfLink=link,
            status="READY",
        )
        self.policies[key] = policy
        return web.json_response(self._operation(project, region, "insert", policy))

    async def _get(self, request: web.Request) -> web.StreamResponse:
        key = _key(request)
        policy = self.policies.get(key)
        if policy is None:
            return self._not_found(key)
        return web.json_response(policy)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        project, region = request.match_info["project"], request.match_info["region"]
        items = [
            p for (pr, rg, _), p in sorted(self.policies.items()) if (pr, rg) == (project, region)
        ]
        return web.json_response({"kind": "compute#resourcePolicyList", "items": items})

    async def _aggregated(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        by_region: dict[str, list[dict[str, Any]]] = {}
        for (pr, region, _), policy in sorted(self.policies.items()):
            if pr == project:
                by_region.setdefault(f"regions/{region}", []).append(policy)
        return web.json_response(
            {
                "kind": "compute#resourcePolicyAggregatedList",
                "items": {scope: {"resourcePolicies": ps} for scope, ps in by_region.items()},
            }
        )

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        key = _key(request)
        policy = self.policies.get(key)
        if policy is None:
            return self._not_found(key)
        users = sorted(self.users.get(key, set()))
        if users:
            path = f"projects/{key[0]}/regions/{key[1]}/resourcePolicies/{key[2]}"
            user = users[0].split("/v1/")[-1]
            return error(
                400,
                "resourceInUseByAnotherResource",
                f"The resource_policy resource '{path}' is already being used by '{user}'",
            )
        del self.policies[key]
        return web.json_response(self._operation(key[0], key[1], "delete", policy))

    async def _op(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        op = self.operations.get((m["project"], m["region"], m["op"]))
        if op is None:
            return error(404, "notFound", "operation not found")
        op.update(status="DONE", progress=100, endTime=now())
        return web.json_response(op)

    def _operation(self, project: str, region: str, kind: str, policy: dict[str, Any]) -> Any:
        name = f"operation-{uuid.uuid4().hex}"
        region_link = f"{PUBLIC_BASE}/projects/{project}/regions/{region}"
        op = {
            "kind": "compute#operation",
            "id": str(self.next_id()),
            "name": name,
            "region": region_link,
            "operationType": kind,
            "targetLink": policy["selfLink"],
            "targetId": policy["id"],
            "status": "RUNNING",
            "progress": 0,
            "insertTime": now(),
            "startTime": now(),
            "selfLink": f"{region_link}/operations/{name}",
        }
        self.operations[(project, region, name)] = op
        return op

    def _not_found(self, key: tuple[str, str, str]) -> web.Response:
        path = f"projects/{key[0]}/regions/{key[1]}/resourcePolicies/{key[2]}"
        return error(404, "notFound", f"The resource '{path}' was not found")


def _key(request: web.Request) -> tuple[str, str, str]:
    m = request.match_info
    return m["project"], m["region"], m["name"]

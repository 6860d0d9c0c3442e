"""Compute Engine's global firewall rules for the fake GCE: insert, get, list and delete,
each insert checked by skyd.testing.gce_schema.check_firewall (the vendored Firewall schema
from google-cloud-compute's descriptors, and GCE's rules for names, networks, protocols,
ports and ranges); global operations for them (get, wait)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from aiohttp import web

from skyd.testing.gce_rest import API, PUBLIC_BASE, error, matches
from skyd.testing.gce_schema import GceError, check_firewall


class FakeFirewalls:
    """The firewalls of every project the fake serves, by (project, name)."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.rules: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[tuple[str, str], dict[str, Any]] = {}
        self.refused: list[GceError] = []
        self._ids = itertools.count(7_000_000_000_000)

    def routes(self, router: web.UrlDispatcher) -> None:
        base = API + "/global/firewalls"
        router.add_post(base, self._insert)
        router.add_get(base, self._list)
        router.add_get(base + "/{name}", self._get)
        router.add_delete(base + "/{name}", self._delete)
        router.add_get(API + "/global/operations/{op}", self._op)
        router.add_post(API + "/global/operations/{op}/wait", self._op)

    def _link(self, project: str, name: str) -> str:
        return f"{PUBLIC_BASE}/projects/{project}/global/firewalls/{name}"

    def _not_found(self, project: str, name: str) -> web.Response:
        return error(
            404,
            "notFound",
            f"The resource 'projects/{project}/global/firewalls/{name}' was not found",
        )

    async def _insert(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        try:
            body = await request.json()
        except ValueError:
            return error(400, "parseError", "Parse Error")
        refused = check_firewall(body, project) if self.strict else None
        if refused is not None:
            self.refused.append(refused)
            return error(
                refused.status, refused.reason, refused.message, refused.field, refused.grpc_status
            )
        name = str(body["name"])
        if (project, name) in self.rules:
            return error(
                409,
                "alreadyExists",
                f"The resource 'projects/{project}/global/firewalls/{name}' already exists",
            )
        rule = {
            "kind": "compute#firewall",
            "id": str(next(self._ids)),
            "direction": "INGRESS",
            "priority": 1000,
            "network": f"{PUBLIC_BASE}/projects/{project}/global/networks/default",
            "sourceRanges": ["0.0.0.0/0"],
            **body,
            "selfLink": self._link(project, name),
            "creationTimestamp": "2026-01-01T00:00:00.000-07:00",
        }
        self.rules[(project, name)] = rule
        return web.json_response(self._operation(project, "insert", rule))

    async def _get(self, request: web.Request) -> web.StreamResponse:
        project, name = request.match_info["project"], request.match_info["name"]
        rule = self.rules.get((project, name))
        return web.json_response(rule) if rule else self._not_found(project, name)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        project = request.match_info["project"]
        query = request.query.get("filter", "")
        items = [r for (p, _), r in self.rules.items() if p == project and matches(r, query)]
        return web.json_response({"kind": "compute#firewallList", "items": items})

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        project, name = request.match_info["project"], request.match_info["name"]
        rule = self.rules.pop((project, name), None)
        if rule is None:
            return self._not_found(project, name)
        return web.json_response(self._operation(project, "delete", rule))

    def _operation(self, project: str, kind: str, rule: dict[str, Any]) -> dict[str, Any]:
        name = f"operation-{uuid.uuid4().hex}"
        body = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "operationType": kind,
            "targetLink": rule["selfLink"],
            "targetId": rule["id"],
            "status": "DONE",  # firewall changes are applied before the call answers here
            "progress": 100,
            "selfLink": f"{PUBLIC_BASE}/projects/{project}/global/operations/{name}",
        }
        self.operations[(project, name)] = body
        return body

    async def _op(self, request: web.Request) -> web.StreamResponse:
        op = self.operations.get((request.match_info["project"], request.match_info["op"]))
        if op is None:
            return error(404, "notFound", "operation not found")
        return web.json_response(op)

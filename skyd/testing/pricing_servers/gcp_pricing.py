"""A fake of the GCP pricing surface: Cloud Billing Catalog SKUs and Compute Engine type lists.

Routes (real paths, real response shapes, opaque page tokens):
    GET /v1/services/{service}/skus                                  ?key= or Bearer
    GET /compute/v1/projects/{project}/aggregated/machineTypes        Bearer
    GET /compute/v1/projects/{project}/aggregated/acceleratorTypes    Bearer
Aggregated lists page over (zone, entry) pairs and, like Compute Engine, carry a
NO_RESULTS_ON_PAGE warning for zones that have nothing on the page.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from skyd.testing.pricing_servers.faults import FaultPlan
from skyd.testing.pricing_servers.server import LoopbackServer

COMPUTE_SERVICE_ID = "6F81-5844-456A"


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str) -> int:
    if not token:
        return 0
    return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))


def _google_error(status: int, state: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": state}}
    return web.json_response(body, status=status)


class GcpPricingServer(LoopbackServer):
    """`skus`: Sku dicts; `machine_types`/`accelerator_types`: zone → list of resource dicts."""

    def __init__(
        self,
        skus: Sequence[Mapping[str, Any]],
        machine_types: Mapping[str, Sequence[Mapping[str, Any]]],
        accelerator_types: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        page_size: int = 50,
        api_key: str = "fake-api-key",
        access_token: str = "fake-access-token",
        project: str = "fake-project",
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults)
        self.skus = list(skus)
        self.machine_types = {zone: list(v) for zone, v in machine_types.items()}
        self.accelerator_types = {zone: list(v) for zone, v in accelerator_types.items()}
        self.page_size = page_size
        self.api_key = api_key
        self.access_token = access_token
        self.project = project

    def routes(self) -> list[web.RouteDef]:
        aggregated = "/compute/v1/projects/{project}/aggregated/"
        return [
            web.get("/v1/services/{service}/skus", self._skus),
            web.get(aggregated + "machineTypes", self._machine_types),
            web.get(aggregated + "acceleratorTypes", self._accelerator_types),
        ]

    def _page(self, request: web.Request, route: str) -> tuple[int, int, web.Response | None]:
        try:
            offset = _offset(request.query.get("pageToken", ""))
        except ValueError:
            return 0, 0, _google_error(400, "INVALID_ARGUMENT", "Invalid page token")
        wanted = request.query.get("pageSize") or request.query.get("maxResults")
        size = min(self.page_size, int(wanted)) if wanted else self.page_size
        return offset, size, self.begin(request, route, offset // size + 1)

    def _bearer_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def _skus(self, request: web.Request) -> web.Response:
        offset, size, fault = self._page(request, "skus")
        if fault is not None:
            return fault
        if request.query.get("key") != self.api_key and not self._bearer_ok(request):
            return _google_error(
                403, "PERMISSION_DENIED", "The request is missing a valid API key."
            )
        if request.match_info["service"] != COMPUTE_SERVICE_ID:
            return _google_error(404, "NOT_FOUND", "Service not found.")
        end = offset + size
        body: dict[str, Any] = {
            "skus": self.skus[offset:end],
            "nextPageToken": _token(end) if end < len(self.skus) else "",
        }
        return web.json_response(body)

    async def _machine_types(self, request: web.Request) -> web.Response:
        return await self._aggregated(request, "machineTypes", self.machine_types)

    async def _accelerator_types(self, request: web.Request) -> web.Response:
        return await self._aggregated(request, "acceleratorTypes", self.accelerator_types)

    async def _aggregated(
        self,
        request: web.Request,
        kind: str,
        by_zone: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> web.Response:
        offset, size, fault = self._page(request, kind)
        if fault is not None:
            return fault
        if not self._bearer_ok(request):
            return _google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if request.match_info["project"] != self.project:
            return _google_error(
                404,
                "NOT_FOUND",
                f"The resource 'projects/{request.match_info['project']}' was not found",
            )
        pairs = [(zone, entry) for zone in sorted(by_zone) for entry in by_zone[zone]]
        end = offset + size
        items: dict[str, Any] = {
            f"zones/{zone}": {
                "warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": f"There are no results for scope 'zones/{zone}' on this page.",
                }
            }
            for zone in by_zone
        }
        for zone, entry in pairs[offset:end]:
            scoped = items[f"zones/{zone}"]
            scoped.pop("warning", None)
            scoped.setdefault(kind, []).append(entry)
        body: dict[str, Any] = {
            "kind": f"compute#{kind[:-1]}AggregatedList",
            "id": f"projects/{self.project}/aggregated/{kind}",
            "items": items,
            "selfLink": f"{self.url}{request.path}",
        }
        if end < len(pairs):
            body["nextPageToken"] = _token(end)
        return web.json_response(body)

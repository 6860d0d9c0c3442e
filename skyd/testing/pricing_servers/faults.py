"""Scripted misbehaviour for the fake pricing servers: throttling, 5xx and garbage pages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Fault:
    """Answer a matching request with `status`/`body`/`headers` instead of the real page.

    `route` and `page` narrow the match (None matches any); `times` is how many
    matching requests get the fault (None: every one, i.e. a permanent failure).
    """

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    route: str | None = None
    page: int | None = None
    times: int | None = 1
    served: int = 0

    def matches(self, route: str, page: int) -> bool:
        exhausted = self.times is not None and self.served >= self.times
        return (
            not exhausted
            and (self.route is None or self.route == route)
            and (self.page is None or self.page == page)
        )


@dataclass
class FaultPlan:
    """The faults a server injects, consulted in the order they were added."""

    faults: list[Fault] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def throttle(
        self,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: str | None = "7",
        route: str | None = None,
        page: int | None = None,
    ) -> Fault:
        """The next `times` matching requests are throttled (429 or 503) with Retry-After."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = json.dumps({"error": {"code": status, "message": "Too many requests"}})
        return self.add(Fault(status, body, headers, route=route, page=page, times=times))

    def server_error(
        self,
        *,
        status: int = 500,
        route: str | None = None,
        page: int | None = None,
        times: int | None = None,
    ) -> Fault:
        """Matching requests fail with a 5xx (forever unless `times` is given)."""
        body = json.dumps({"error": {"code": status, "message": "Internal error"}})
        return self.add(Fault(status, body, route=route, page=page, times=times))

    def garbage(
        self, *, route: str | None = None, page: int | None = None, times: int | None = None
    ) -> Fault:
        """Matching requests get HTTP 200 with a body that is not JSON (a truncated page)."""
        return self.add(
            Fault(200, '{"Items": [{"armSkuName": "Standard_', route=route, page=page, times=times)
        )

    def response_for(self, route: str, page: int) -> web.Response | None:
        for fault in self.faults:
            if fault.matches(route, page):
                fault.served += 1
                return web.Response(
                    status=fault.status,
                    text=fault.body,
                    headers=fault.headers,
                    content_type="application/json",
                )
        return None

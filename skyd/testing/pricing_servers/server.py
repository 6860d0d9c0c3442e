"""The loopback aiohttp server the fake pricing APIs share: start/stop, URL, request log."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web

from skyd.testing.pricing_servers.faults import FaultPlan


@dataclass(frozen=True)
class RecordedRequest:
    """What a fake saw: tests check pagination and credentials with it."""

    route: str
    page: int
    path: str
    query: dict[str, str]
    authorization: str | None


class LoopbackServer:
    """Base of the fakes: subclasses add routes in `routes()` and call `begin()` per request."""

    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.faults = faults or FaultPlan()
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("server not started; use `async with` first")
        return f"http://127.0.0.1:{self._port}"

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def begin(self, request: web.Request, route: str, page: int) -> web.Response | None:
        """Record the request; a scripted fault's response if one applies, else None."""
        self.requests.append(
            RecordedRequest(
                route=route,
                page=page,
                path=request.path,
                query=dict(request.query),
                authorization=request.headers.get("Authorization"),
            )
        )
        return self.faults.response_for(route, page)

    def requests_for(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Binding the socket ourselves is how we learn the free port the OS picked.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

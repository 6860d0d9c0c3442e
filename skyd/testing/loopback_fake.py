"""The cloud fakes' shared server: aiohttp on 127.0.0.1, time spent answering, hung calls."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable

from aiohttp import web


class LoopbackFake:
    """One aiohttp application on an ephemeral loopback port, started and stopped by its fake."""

    def __init__(self) -> None:
        # Time spent inside request handlers: the "cloud latency" benchmarks subtract.
        self.server_seconds = 0.0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    async def _serve(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> int:
        """Serve `app` on 127.0.0.1; the port it got."""
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hang(self) -> web.Response:
        """A call that never answers (until the fake stops): a lost connection to the client."""
        await self._closing.wait()
        return web.Response(status=503)

    @web.middleware
    async def _timed(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            self.server_seconds += time.perf_counter() - started

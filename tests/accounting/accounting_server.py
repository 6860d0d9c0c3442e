"""Test harness: the accounting routes served on a real Unix socket from a thread, and raw
requests to it as any uid (see skyd.testing.unix_http)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from skyd.accounting import Accountant
from skyd.api.accounting_routes import add_accounting_routes
from skyd.testing.unix_http import ThreadedUnixApp, request, request_as

__all__ = ["AccountingServer", "request", "request_as"]


class AccountingServer:
    """An aiohttp app with only the accounting routes, on `socket_path` (mode 0666)."""

    def __init__(self, accountant: Accountant, socket_path: Path, admin_group: str) -> None:
        self.socket_path = socket_path

        async def build(app: web.Application) -> None:
            add_accounting_routes(app, accountant, admin_group)

        self._server = ThreadedUnixApp(build, socket_path, name="accounting-api")

    def __enter__(self) -> AccountingServer:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()

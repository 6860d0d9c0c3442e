"""Test harness: the accounting routes served on a real Unix socket from a thread, and raw
requests to it as any uid (see skyd.testing.unix_http)."""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from aiohttp import web

from skyctl.client import DaemonClient
from skyd.accounting import Accountant
from skyd.api.accounting_routes import add_accounting_routes
from skyd.testing.unix_http import ThreadedUnixApp, request, request_as

__all__ = ["AccountingServer", "request", "request_as", "serving_client", "skyctl_output"]

Declare = Callable[[argparse.ArgumentParser], None]
Handler = Callable[[argparse.Namespace, DaemonClient, TextIO, TextIO], int]


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


@contextlib.contextmanager
def serving_client(books: Accountant, prefix: str) -> Iterator[DaemonClient]:
    """skyctl's client of `books` served as admin group skyd-admin, on a short socket path."""
    short = Path(tempfile.mkdtemp(prefix=prefix))  # socket paths must stay short
    try:
        with (
            AccountingServer(books, short / "skyd.sock", "skyd-admin") as server,
            DaemonClient(str(server.socket_path)) as daemon,
        ):
            yield daemon
    finally:
        shutil.rmtree(short, ignore_errors=True)


def skyctl_output(client: DaemonClient, declare: Declare, handler: Handler, *argv: str) -> str:
    """What one skyctl command (its `declare`d arguments, its `handler`) prints; it must exit 0."""
    parser = argparse.ArgumentParser(prog="skyctl")
    declare(parser)
    out = io.StringIO()
    assert handler(parser.parse_args(list(argv)), client, out, io.StringIO()) == 0
    return out.getvalue()

"""Test harness: the cluster routes on a real Unix socket, served from a thread with the real
local provider, and raw HTTP requests to it as any uid (a forked child that drops to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from skyd.api.cluster_routes import add_cluster_routes
from skyd.clock import VirtualClock
from skyd.providers.base import Provider
from skyd.providers.local import LocalProvider
from skyd.testing import unix_http
from skyd.testing.unix_http import ThreadedUnixApp
from tests.clusters.cluster_world import ClusterWorld, cluster_world


class ClusterServer:
    """An aiohttp app with only the cluster routes on `socket_path` (mode 0666)."""

    def __init__(self, state_dir: Path, socket_path: Path, admin_group: str = "skyd-admin") -> None:
        self.socket_path = socket_path
        self.slots_dir = state_dir / "slots"
        self.local: LocalProvider | None = None
        self.world: ClusterWorld | None = None
        self._state_dir = state_dir

        async def build(app: web.Application) -> None:
            self.world = cluster_world(self._state_dir, providers=self._providers)
            add_cluster_routes(app, self.world.service, admin_group)

        self._server = ThreadedUnixApp(build, socket_path, name="cluster-api")

    def __enter__(self) -> ClusterServer:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()
        if self.world is not None:
            self.world.store.close()

    def _providers(self, clock: VirtualClock) -> dict[str, Provider]:
        self.local = LocalProvider(self.slots_dir, clock, slots=2, gpus=0)
        return {"local": self.local}


def request(socket_path: Path, method: str, target: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP/1.1 request; (status, decoded JSON body)."""
    status, answer, _kind = unix_http.request(socket_path, method, target, body)
    return status, answer


request_as = unix_http.request_as

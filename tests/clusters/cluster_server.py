"""Test harness: the cluster routes on a real Unix socket, served from a thread with the real
local provider, and raw HTTP requests to it as any uid (a forked child that drops to it)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from cluster_world import ClusterWorld, cluster_world

from skyd.api.app import errors_as_json, serve_unix
from skyd.api.cluster_routes import add_cluster_routes
from skyd.clock import VirtualClock
from skyd.providers.base import Provider
from skyd.providers.local import LocalProvider


class ClusterServer:
    """An aiohttp app with only the cluster routes on `socket_path` (mode 0666)."""

    def __init__(self, state_dir: Path, socket_path: Path, admin_group: str = "skyd-admin") -> None:
        self.socket_path = socket_path
        self.slots_dir = state_dir / "slots"
        self.local: LocalProvider | None = None
        self.world: ClusterWorld | None = None
        self._state_dir = state_dir
        self._admin_group = admin_group
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="cluster-api", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> ClusterServer:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        if self.world is not None:
            self.world.store.close()

    def _providers(self, clock: VirtualClock) -> dict[str, Provider]:
        self.local = LocalProvider(self.slots_dir, clock, slots=2, gpus=0)
        return {"local": self.local}

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.world = cluster_world(self._state_dir, providers=self._providers)
            app = web.Application(middlewares=[errors_as_json])
            add_cluster_routes(app, self.world.service, self._admin_group)
            runner = await serve_unix(app, self.socket_path, mode=0o666, group=None)
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

        try:
            asyncio.run(serve())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()


def request(socket_path: Path, method: str, target: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP/1.1 request with `Connection: close`; (status, decoded JSON body)."""
    payload = b"" if body is None else json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(socket_path))
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: skyd\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, raw = data.partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n")[0].split()[1])
    return status, json.loads(raw)


def request_as(
    uid: int, socket_path: Path, method: str, target: str, body: Any = None
) -> tuple[int, Any]:
    """`request` from a forked child running as `uid`, so the server's SO_PEERCRED sees it."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, ask, report through the pipe, leave at once
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            answer = request(socket_path, method, target, body)
            os.write(write_fd, json.dumps(answer).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    status, answer = json.loads(data)
    return int(status), answer

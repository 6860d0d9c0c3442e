"""Raw HTTP over a Unix socket for tests: an aiohttp app served from its own thread, one
request at a time, and a request made as another uid (a forked child that drops to it, so
the server's SO_PEERCRED sees that uid)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from skyd.api.app import errors_as_json, serve_unix


class ThreadedUnixApp:
    """Serve the app `build()` returns (built inside the server's own loop) on
    `socket_path`, mode 0666 so another uid can connect; a context manager."""

    def __init__(
        self,
        build: Callable[[web.Application], Awaitable[None]],
        socket_path: Path,
        name: str = "unix-app",
    ) -> None:
        self.socket_path = socket_path
        self._build = build
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            app = web.Application(middlewares=[errors_as_json])
            await self._build(app)
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


def request(
    socket_path: Path | str, method: str, target: str, body: Any = None
) -> tuple[int, Any, str]:
    """One HTTP/1.1 request; (status, JSON body — or text when not JSON —, content type)."""
    payload = b"" if body is None else json.dumps(body).encode()
    return raw_request(socket_path, method, target, payload, "application/json")


def raw_request(
    socket_path: Path | str, method: str, target: str, payload: bytes, content_type: str
) -> tuple[int, Any, str]:
    """Like `request`, with the body bytes as given (e.g. broken JSON)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(socket_path))
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: skyd\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, raw = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        raw = _unchunk(raw)
    kind = headers.get("content-type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode(), kind


def _unchunk(raw: bytes) -> bytes:
    out = b""
    while raw:
        size_line, _, rest = raw.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += rest[:size]
        raw = rest[size + 2 :]
    return out


def request_as(
    uid: int, socket_path: Path | str, method: str, target: str, body: Any = None
) -> tuple[int, Any]:
    """`request` from a forked child running as `uid` (and gid = uid); (status, body)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, ask, report through the pipe, leave at once
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            status, answer, _kind = request(socket_path, method, target, body)
            os.write(write_fd, json.dumps([status, answer]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    status, answer = json.loads(data)
    return int(status), answer

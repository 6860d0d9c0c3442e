"""A scripted HTTP/1.1 responder on a Unix socket, to test skyctl's wire protocol without skyd.

It knows nothing of the API's meaning: a test says which canned answer each (method, path)
gets and then inspects the requests it recorded. That keeps skyctl's tests about what goes
over the socket, while the real daemon is exercised by the end-to-end tests.
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: header names are lower-case, the query is decoded, and
    `connection` numbers the client connections in the order they were accepted."""

    connection: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class CannedResponse:
    """What to answer. With `chunks`, the body is sent with chunked transfer encoding, one
    chunk per item, each written as soon as the iterable yields it."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    chunks: Iterable[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> CannedResponse:
        return cls(status=status, body=json.dumps(value).encode())

    @classmethod
    def error(
        cls, status: int, code: str, message: str, field_name: str | None = None
    ) -> CannedResponse:
        return cls.json({"code": code, "message": message, "field": field_name}, status)

    @classmethod
    def streamed(
        cls, chunks: Iterable[bytes], content_type: str = "text/plain; charset=utf-8"
    ) -> CannedResponse:
        return cls(content_type=content_type, chunks=chunks)


Answer = CannedResponse | Callable[[RecordedRequest], CannedResponse]
NOT_FOUND = CannedResponse(404, b"404: Not Found", "text/plain; charset=utf-8")


class ScriptedResponder:
    """Serves canned answers on `socket_path` from a background thread until closed."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._routes: dict[tuple[str, str], Answer] = {}
        self._requests: list[RecordedRequest] = []
        self._connections = 0
        self._lock = threading.Lock()
        self._server = _Server(socket_path, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def on(self, method: str, path: str, answer: Answer) -> None:
        """Answer `method path` (path without its query) with `answer` from now on."""
        with self._lock:
            self._routes[(method.upper(), path)] = answer

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> ScriptedResponder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def accepted(self) -> int:
        """Count a new client connection; returns its number."""
        with self._lock:
            self._connections += 1
            return self._connections

    def respond_to(self, request: RecordedRequest) -> CannedResponse:
        with self._lock:
            self._requests.append(request)
            answer = self._routes.get((request.method, request.path), NOT_FOUND)
        return answer(request) if callable(answer) else answer


class _Server(socketserver.ThreadingUnixStreamServer):
    # Daemon threads: a handler still streaming when a test ends must not block close().
    daemon_threads = True

    def __init__(self, socket_path: str, responder: ScriptedResponder) -> None:
        self.responder = responder
        super().__init__(socket_path, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.server, _Server)
        self.connection_number = self.server.responder.accepted()

    def log_message(self, format: str, *args: Any) -> None:
        # The base class logs every request to stderr using a TCP peer address we do not have.
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = urlsplit(self.path)
        request = RecordedRequest(
            connection=self.connection_number,
            method=self.command,
            path=target.path,
            query=parse_qs(target.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        assert isinstance(self.server, _Server)
        response = self.server.responder.respond_to(request)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.chunks is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up mid-stream (Ctrl-C on `logs -f`): nothing left to answer.
            self.close_connection = True

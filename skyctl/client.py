"""HTTP/JSON client for the skyd API over the daemon's Unix socket, built on http.client only.

Errors (the whole tree):

    Exception
    ├── ApiError                the daemon answered 4xx/5xx: code, message, field, status
    └── DaemonUnavailableError  nothing usable answers on the socket (not running, no access)
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import quote, urlencode

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # A decoded JSON object as the daemon sends it; fields are read with .get() so that a newer
    # daemon adding fields never breaks an older skyctl.
    JsonObject = dict[str, Any]
    QueryValue = str | int | float | bool | None

USER_AGENT = "skyctl/0.1"
DEFAULT_TIMEOUT = 120.0
_READ_SIZE = 65536


class ApiError(Exception):
    """The daemon refused a request.

    `structured` is False when the body was not the documented `{code, message, field}`
    JSON, e.g. the web framework's own 404 for a route an older daemon does not have.
    """

    def __init__(
        self, code: str, message: str, field: str | None, status: int, *, structured: bool = True
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        self.structured = structured


class DaemonUnavailableError(Exception):
    """The socket could not be used: no daemon listens there, or we may not talk to it."""

    def __init__(self, socket_path: str, reason: str, *, permission_denied: bool = False) -> None:
        super().__init__(f"{socket_path}: {reason}")
        self.socket_path = socket_path
        self.reason = reason
        self.permission_denied = permission_denied


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection whose transport is a Unix stream socket instead of TCP."""

    def __init__(self, socket_path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def build_target(path: str, query: Mapping[str, QueryValue] | None) -> str:
    """The request target: the path plus a query string without the unset parameters."""
    if not query:
        return path
    pairs = [
        (key, ("1" if value else "0") if isinstance(value, bool) else str(value))
        for key, value in query.items()
        if value is not None
    ]
    return f"{path}?{urlencode(pairs)}" if pairs else path


def job_path(job_id: int, suffix: str = "") -> str:
    return f"/v1/jobs/{quote(str(job_id), safe='')}{suffix}"


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Re-cut a byte stream into complete lines (without their newline); a partial tail is kept."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


class DaemonClient:
    """One skyctl invocation's conversation with the daemon.

    Plain requests share one keep-alive connection with a timeout; each stream gets its own
    connection without one, since a followed log may stay quiet for hours.
    """

    def __init__(self, socket_path: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._connection: UnixHTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- generic calls -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        unbounded: bool = False,
    ) -> Any:
        """Send one request and return the decoded JSON answer (None for an empty body).

        `unbounded`: on a connection of its own without a timeout, for a call the daemon
        bounds itself and that may take longer than the usual timeout (a cancel).
        """
        if unbounded:
            connection = UnixHTTPConnection(self.socket_path, None)
        elif self._connection is None:
            connection = self._connection = UnixHTTPConnection(self.socket_path, self.timeout)
        else:
            connection = self._connection
        try:
            response = self._send(connection, method, path, query, body, "application/json")
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            if connection is self._connection:
                self.close()
            raise DaemonUnavailableError(self.socket_path, _describe(exc)) from exc
        finally:
            if connection is not self._connection:
                connection.close()
        if response.status >= 400:
            raise _error_from(response.status, response.reason, data)
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ApiError(
                "bad_response",
                f"the daemon sent a reply that is not JSON ({len(data)} bytes) for {method} {path}",
                None,
                response.status,
                structured=False,
            ) from exc

    def stream(
        self, path: str, *, query: Mapping[str, QueryValue] | None = None
    ) -> Iterator[bytes]:
        """GET a streamed resource; the request is made (and may raise) before this returns."""
        connection = UnixHTTPConnection(self.socket_path, None)
        try:
            response = self._send(connection, "GET", path, query, None, "*/*")
            if response.status >= 400:
                try:
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    raise DaemonUnavailableError(self.socket_path, _describe(exc)) from exc
                raise _error_from(response.status, response.reason, data)
        except BaseException:
            connection.close()
            raise
        return self._chunks(connection, response)

    # -- the jobs API ----------------------------------------------------------------------

    def submit_task(
        self,
        task_yaml: str,
        base_dir: str,
        name: str | None,
        source: str | None = None,
        overrides: JsonObject | None = None,
    ) -> JsonObject:
        """Submit a task file's text; `source` is its name as the user gave it, for messages;
        `overrides` the command line's --env/--gpus/… (see skyctl.task_overrides)."""
        body: JsonObject = {"task_yaml": task_yaml, "base_dir": base_dir, "name": name}
        body["source"] = source
        if overrides:
            body["overrides"] = overrides
        return _as_object(self.request("POST", "/v1/jobs", body=body))

    def submit_command(self, command: Sequence[str], base_dir: str, name: str | None) -> JsonObject:
        body = {"command": list(command), "base_dir": base_dir, "name": name}
        return _as_object(self.request("POST", "/v1/jobs", body=body))

    def list_jobs(
        self,
        *,
        states: Sequence[str] = (),
        user: str | None = None,
        include_terminal: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> tuple[list[JsonObject], str | None]:
        """One page of jobs, newest first, and the cursor of the next page (None at the end)."""
        query: dict[str, QueryValue] = {
            "state": ",".join(states) or None,
            "user": user,
            "all": 1 if include_terminal else None,
            "limit": limit,
            "cursor": cursor,
        }
        page = _as_object(self.request("GET", "/v1/jobs", query=query))
        jobs = page.get("jobs") or []
        next_cursor = page.get("next_cursor")
        return list(jobs), None if next_cursor is None else str(next_cursor)

    def get_job(self, job_id: int) -> JsonObject:
        return _as_object(self.request("GET", job_path(job_id)))

    def cancel_job(self, job_id: int, *, wait: bool = False) -> JsonObject:
        """Ask for the job's cancel: answered at once (the kill goes on in the daemon), or
        with `wait` once the job has ended."""
        # With wait the daemon answers once the job has stopped and its bucket mounts are
        # written back, within [local] cancel_grace_seconds + cancel_write_back_seconds (300 s
        # by default): a client timeout would report as failed a cancel that goes on. Without,
        # unbounded all the same: a daemon older than wait=0 ignores it and waits.
        query: dict[str, QueryValue] = {"wait": wait}
        return _as_object(
            self.request("POST", job_path(job_id, "/cancel"), query=query, unbounded=True)
        )

    def job_logs(
        self,
        job_id: int,
        *,
        follow: bool,
        offset: int = 0,
        node: int = 0,
        all_nodes: bool = False,
    ) -> Iterator[bytes]:
        query: dict[str, QueryValue] = {
            "follow": follow,
            "offset": offset or None,
            "node": node or None,
            "all_nodes": all_nodes or None,
        }
        return self.stream(job_path(job_id, "/logs"), query=query)

    def events(self, since: int | None = None) -> Iterator[JsonObject]:
        """The daemon's event stream, one decoded event per NDJSON line, heartbeats included."""
        for line in split_lines(self.stream("/v1/events", query={"since": since})):
            if line.strip():
                yield _as_object(json.loads(line))

    def health(self) -> JsonObject:
        return _as_object(self.request("GET", "/v1/health"))

    # -- transport ---------------------------------------------------------------------------

    def _send(
        self,
        connection: UnixHTTPConnection,
        method: str,
        path: str,
        query: Mapping[str, QueryValue] | None,
        body: Any,
        accept: str,
    ) -> http.client.HTTPResponse:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, build_target(path, query), body=payload, headers=headers)
            return connection.getresponse()
        except PermissionError as exc:
            connection.close()
            raise DaemonUnavailableError(
                self.socket_path, _describe(exc), permission_denied=True
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            if connection is self._connection:
                self._connection = None
            raise DaemonUnavailableError(self.socket_path, _describe(exc)) from exc

    def _chunks(
        self, connection: UnixHTTPConnection, response: http.client.HTTPResponse
    ) -> Iterator[bytes]:
        # read1 hands over whatever has arrived (de-chunked) instead of waiting for a full buffer,
        # so a followed log appears as soon as the daemon writes it.
        try:
            while chunk := response.read1(_READ_SIZE):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnavailableError(
                self.socket_path, f"the daemon closed the stream early ({_describe(exc)})"
            ) from exc
        finally:
            connection.close()


def _as_object(value: Any) -> JsonObject:
    if not isinstance(value, dict):
        raise ApiError(
            "bad_response",
            f"the daemon sent {type(value).__name__} where a JSON object was expected",
            None,
            200,
            structured=False,
        )
    return value


def _error_from(status: int, reason: str, data: bytes) -> ApiError:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        field = body.get("field")
        return ApiError(
            str(body.get("code") or f"http_{status}"),
            body["message"],
            field if isinstance(field, str) and field else None,
            status,
        )
    text = data.decode("utf-8", "replace").strip() or reason
    return ApiError(f"http_{status}", text, None, status, structured=False)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such socket"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (stale socket: the daemon is gone)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, TimeoutError):
        return "no answer before the timeout"
    return str(exc) or type(exc).__name__

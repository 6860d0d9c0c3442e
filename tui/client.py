"""Async client of the skyd API over the daemon's Unix socket, for the dashboard.

Errors (the whole tree):

    Exception
    ├── ApiError                  the daemon answered 4xx/5xx: code, message, status
    │   └── EndpointMissingError  the daemon has no such route (an older daemon)
    └── DaemonUnavailableError    nothing usable answers on the socket
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple

import aiohttp

JsonObject = dict[str, Any]
QueryValue = str | int | float | bool | None

# A heartbeat line comes every 15 s; a stream silent for much longer is a dead daemon.
STREAM_SILENCE_SECONDS = 45.0
REQUEST_SECONDS = 30.0
CLOSE_GRACE_SECONDS = 0.05
# A lab's whole history can be large; "all jobs" shows the newest this many.
MOST_JOBS = 50_000


class ApiError(Exception):
    """The daemon refused a request."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class EndpointMissingError(ApiError):
    """The route does not exist on this daemon (it predates the feature)."""


class DaemonUnavailableError(Exception):
    """Nothing answers on the socket, or the connection broke."""

    def __init__(self, socket_path: str, reason: str) -> None:
        super().__init__(f"{socket_path}: {reason}")
        self.socket_path = socket_path
        self.reason = reason


class DaemonApi:
    """One aiohttp session on the Unix socket; every method turns transport failures into
    DaemonUnavailableError so callers handle exactly two kinds of failure."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path),
                base_url="http://skyd",
                headers={"User-Agent": "skyd-tui/0.1"},
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            # aiohttp closes the sockets over the next few turns of the loop; a loop that ends
            # at once leaves them open, and a daemon serving them then waits on its shutdown
            await asyncio.sleep(CLOSE_GRACE_SECONDS)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: Any = None,
        route_may_be_missing: bool = False,
        timeout_s: float | None = REQUEST_SECONDS,
    ) -> Any:
        """Send one request and decode its JSON answer.

        With `route_may_be_missing`, a 404 from the web framework itself (not one of the
        daemon's own "no such job" answers) raises EndpointMissingError. `timeout_s` None:
        no timeout, for a call the daemon bounds itself (a cancel).
        """
        params = _query(query)
        try:
            async with self._client().request(
                method,
                path,
                params=params,
                json=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DaemonUnavailableError(self.socket_path, _reason(exc)) from exc
        try:
            payload = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            payload = None
        if status >= 400:
            raise _api_error(status, payload, raw, route_may_be_missing)
        return payload

    async def health(self) -> JsonObject:
        result: JsonObject = await self.request("GET", "/v1/health")
        return result

    async def list_jobs(
        self, *, include_finished: bool = False, limit: int = 1000, most: int = MOST_JOBS
    ) -> list[JsonObject]:
        """The listed jobs, newest first, following the cursor across pages up to `most`."""
        jobs: list[JsonObject] = []
        cursor: int | None = None
        while len(jobs) < most:
            page = await self.request(
                "GET",
                "/v1/jobs",
                query={"all": 1 if include_finished else None, "limit": limit, "cursor": cursor},
            )
            jobs.extend(page.get("jobs", []))
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        return jobs[:most]

    async def job(self, job_id: int) -> JsonObject:
        result: JsonObject = await self.request("GET", f"/v1/jobs/{job_id}")
        return result

    async def cancel(self, job_id: int) -> JsonObject:
        """Ask for the job's cancel; the daemon answers at once (wait=0) and stops the job in
        the background, the job's row showing it until it ends."""
        # no client timeout all the same: a daemon older than wait=0 ignores it and answers
        # once the job has stopped, within [local] cancel_write_back_seconds
        result: JsonObject = await self.request(
            "POST", f"/v1/jobs/{job_id}/cancel", query={"wait": 0}, timeout_s=None
        )
        return result

    async def optional(
        self, path: str, query: Mapping[str, QueryValue] | None = None, *, method: str = "GET"
    ) -> Any:
        """A call to an endpoint that an older daemon may lack (EndpointMissingError then)."""
        return await self.request(method, path, query=query, route_may_be_missing=True)

    async def events(self, since: int) -> AsyncIterator[JsonObject]:
        """The daemon's event stream from after `since`, heartbeats included, until it breaks."""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=STREAM_SILENCE_SECONDS)
        try:
            async with self._client().get(
                "/v1/events", params={"since": str(since)}, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise _api_error(response.status, _loads(raw), raw, False)
                async for line in response.content:
                    if line.strip():
                        event = _loads(line)
                        if isinstance(event, dict):
                            yield event
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DaemonUnavailableError(self.socket_path, _reason(exc)) from exc
        raise DaemonUnavailableError(self.socket_path, "the daemon closed the event stream")

    async def log_chunks(self, job_id: int, *, offset: int = 0) -> AsyncIterator[LogChunk]:
        """The job's log from byte `offset`, followed until the job ends and the log is drained.
        Each chunk says where to resume should the stream break. Every node's lines: only
        that view is the log file byte for byte, so a byte count is a place to resume from."""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        decoder = _Utf8Stream()
        try:
            async with self._client().get(
                f"/v1/jobs/{job_id}/logs",
                params={"follow": "1", "offset": str(offset), "all_nodes": "1"},
                timeout=timeout,
            ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise _api_error(response.status, _loads(raw), raw, False)
                consumed = offset
                async for chunk in response.content.iter_any():
                    consumed += len(chunk)
                    text = decoder.feed(chunk)
                    if text:
                        yield LogChunk(text, consumed - decoder.pending)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DaemonUnavailableError(self.socket_path, _reason(exc)) from exc


class LogChunk(NamedTuple):
    text: str
    # the byte offset just after the text: where to resume (a split character is not in text)
    offset: int


class _Utf8Stream:
    """Decodes UTF-8 across chunk boundaries (a character may be split between two chunks)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> str:
        return self._decoder.decode(chunk)

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a character whose rest is in the next chunk."""
        return len(self._decoder.getstate()[0])


def _query(query: Mapping[str, QueryValue] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in (query or {}).items():
        if value is None or value is False:
            continue
        params[key] = "1" if value is True else str(value)
    return params


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _api_error(status: int, payload: Any, raw: bytes, route_may_be_missing: bool) -> ApiError:
    if isinstance(payload, dict) and "message" in payload:
        code = str(payload.get("code", "http_error"))
        message = str(payload["message"])
    else:
        code, message = "http_error", raw.decode(errors="replace").strip() or f"HTTP {status}"
    # aiohttp's own 404 says just "Not Found"; the daemon's handlers always name what is missing.
    if status == 404 and route_may_be_missing and message in {"Not Found", "404: Not Found"}:
        return EndpointMissingError(code, message, status)
    return ApiError(code, message, status)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error is not None:
        text = exc.os_error.strerror or str(exc.os_error)
    return text

"""The fake Resource Manager's async operations: Azure-AsyncOperation URLs and their polls."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class AsyncOperation:
    status: str = "InProgress"
    error: dict[str, str] | None = None
    polls: int = 0
    on_success: list[Callable[[], object]] = field(default_factory=list)
    on_failure: list[Callable[[], object]] = field(default_factory=list)


# what a fake call answers before its handler runs: an error response (or None) and the
# fault it matched (whose async_error, if any, is how the operation ends)
FaultCheck = Callable[[str], Awaitable[tuple[web.Response | None, Any]]]
ErrorBody = Callable[[int, str, str], web.Response]


class ArmOperations:
    """The operations of one fake Resource Manager, by id."""

    def __init__(self, fault: FaultCheck, error: ErrorBody, base_url: Callable[[], str]) -> None:
        self._fault = fault
        self._error = error
        self._base_url = base_url
        self.operations: dict[str, AsyncOperation] = {}

    def routes(self, app: web.Application) -> None:
        base = "/subscriptions/{sub}/providers/{ns}/locations/{loc}"
        app.router.add_get(base + "/operations/{op}", self._op)
        app.router.add_get(base + "/operationResults/{op}", self._op_result)

    def start(
        self,
        request: web.Request,
        namespace: str,
        location: str,
        fault: Any,
        on_success: Callable[[], object] | None = None,
        on_failure: Callable[[], object] | None = None,
    ) -> dict[str, str]:
        """A new operation for `request`; the headers that point its client at it."""
        op_id = str(uuid.uuid4())
        op = AsyncOperation()
        if fault is not None and fault.async_error:
            op.error = {"code": fault.async_error, "message": fault.message}
        if on_success is not None:
            op.on_success.append(on_success)
        if on_failure is not None:
            op.on_failure.append(on_failure)
        self.operations[op_id] = op
        sub = request.match_info["sub"]
        base = f"{self._base_url()}/subscriptions/{sub}/providers/{namespace}/locations/{location}"
        version = request.query.get("api-version", "")
        return {
            "Azure-AsyncOperation": f"{base}/operations/{op_id}?api-version={version}",
            "Location": f"{base}/operationResults/{op_id}?api-version={version}",
            "Retry-After": "0",
        }

    def _advance(self, op: AsyncOperation) -> None:
        # One poll in progress, the next one terminal: clients must really poll.
        op.polls += 1
        if op.status != "InProgress" or op.polls < 2:
            return
        if op.error is not None:
            op.status = "Failed"
            for callback in op.on_failure:
                callback()
        else:
            op.status = "Succeeded"
            for callback in op.on_success:
                callback()

    async def _op(self, request: web.Request) -> web.StreamResponse:
        failure, _ = await self._fault("operation.get")
        if failure is not None:
            return failure
        op_id = request.match_info["op"]
        op = self.operations.get(op_id)
        if op is None:
            return self._error(404, "NotFound", f"operation {op_id} not found")
        self._advance(op)
        body: dict[str, Any] = {"id": request.path, "name": op_id, "status": op.status}
        if op.status == "Failed" and op.error is not None:
            body["error"] = op.error
        return web.json_response(body, headers={"Retry-After": "0"})

    async def _op_result(self, request: web.Request) -> web.StreamResponse:
        op = self.operations.get(request.match_info["op"])
        if op is None:
            return self._error(404, "NotFound", "operation not found")
        if op.status == "InProgress":
            self._advance(op)
            return web.Response(status=202, headers={"Retry-After": "0"})
        return web.Response(status=204)

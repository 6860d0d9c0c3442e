"""Calls to endpoints an older daemon may not have yet, turning "no such route" into plain words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from skyctl.client import ApiError, DaemonClient

if TYPE_CHECKING:
    from skyctl.client import QueryValue


def call_optional(
    client: DaemonClient,
    command: str,
    method: str,
    path: str,
    *,
    query: Mapping[str, QueryValue] | None = None,
    body: Any = None,
    resource_may_be_missing: bool = False,
) -> Any:
    """`client.request`, except that a 404 for the route itself names the unsupported command.

    With `resource_may_be_missing`, only the web framework's own (non-JSON) 404 counts as a
    missing route; the daemon's JSON `not_found` then means the thing asked about is unknown.
    """
    try:
        return client.request(method, path, query=query, body=body)
    except ApiError as exc:
        if exc.status == 404 and not (resource_may_be_missing and exc.structured):
            raise ApiError(
                "unsupported",
                f"this daemon does not support {command} yet (upgrade skyd, or ask its admin)",
                None,
                404,
            ) from exc
        raise

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

    With `resource_may_be_missing`, only a 404 that carries no message of the daemon's own
    counts as a missing route; any other `not_found` means the thing asked about is unknown.
    """
    try:
        return client.request(method, path, query=query, body=body)
    except ApiError as exc:
        if exc.status == 404 and (not resource_may_be_missing or _is_route_miss(exc)):
            raise ApiError(
                "unsupported",
                f"this daemon does not support {command} yet (upgrade skyd, or ask its admin)",
                None,
                404,
            ) from exc
        raise


def _is_route_miss(error: ApiError) -> bool:
    # aiohttp's own 404 says just "Not Found" (skyd's error middleware wraps it in JSON as is);
    # the daemon's handlers always name what they did not find.
    return not error.structured or error.message.strip() in {"Not Found", "404: Not Found"}

"""Compute Engine REST conventions the fake GCE's parts share: paths, error body, filters, times."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

API = "/compute/v1/projects/{project}"
# Self links look like the real API's whatever the fake's address, as clients compare them.
PUBLIC_BASE = "https://www.googleapis.com/compute/v1"

_FILTER_TERM = re.compile(r'\(?\s*([\w.\-]+)\s*(=|!=|eq|ne)\s*"?([^")]*)"?\s*\)?')


def error(
    status: int, reason: str, message: str, field: str = "", grpc_status: str = ""
) -> web.Response:
    """GCE's error answer: `reason` in errors[]; with `grpc_status`, the field violation."""
    body: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
    }
    if grpc_status:
        # What the API's JSON decoder answers (a field it cannot parse).
        body["status"] = grpc_status
        body["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return web.json_response({"error": body}, status=status)


def now() -> str:
    """A GCE timestamp (RFC 3339, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _lookup(resource: dict[str, Any], path: str) -> Any:
    value: Any = resource
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(resource: dict[str, Any], expression: str) -> bool:
    """GCE list filters as skyd writes them: `(a.b = "v") (c != "w")`, implicitly ANDed."""
    for path, op, expected in _FILTER_TERM.findall(expression.replace(" AND ", " ")):
        actual = _lookup(resource, path)
        equal = actual is not None and str(actual) == expected
        if equal != (op in ("=", "eq")):
            return False
    return True

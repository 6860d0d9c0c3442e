"""JSON response bodies encoded with orjson: several times faster than `json` on the loop."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

_OPTIONS = orjson.OPT_NON_STR_KEYS  # json writes int keys as strings; so does this


def encode(data: Any) -> bytes:
    """`data` as JSON bytes; json's answer for what orjson refuses (ints past 64 bits)."""
    try:
        return orjson.dumps(data, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data).encode()


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """What aiohttp's `web.json_response` answers, with the body encoded by `encode`."""
    return web.Response(
        body=encode(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )

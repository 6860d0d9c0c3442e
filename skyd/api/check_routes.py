"""`GET /v1/check` (`skyctl check`): is each cloud usable right now, and if not, what to fix."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from pydantic import BaseModel, Field

from skyd.api.contract import endpoint
from skyd.api.jsonio import json_response
from skyd.providers.base import Provider
from skyd.providers.checks import check_clouds

CHECK_PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("check_providers", dict)


class CloudStatus(BaseModel):
    cloud: str
    configured: bool = Field(description="enabled in the daemon's config")
    enabled: bool = Field(description="credentials and endpoint answered a cheap call just now")
    reason: str = Field(description="what answered, or why the cloud cannot be used")
    fix: str = Field(description="what to change when it is disabled; empty when enabled")


@endpoint(
    "GET", "/v1/check", "Each cloud: one cheap authenticated call, enabled or why not",
    tag="providers", response=list[CloudStatus], errors=(),
)  # fmt: skip
async def check(request: web.Request) -> web.Response:
    providers: dict[str, Provider] = request.app[CHECK_PROVIDERS]
    results = await check_clouds(providers)
    return json_response([asdict(r) for r in results])


def add_check_routes(app: web.Application, providers: dict[str, Provider]) -> None:
    app[CHECK_PROVIDERS] = providers
    app.add_routes([web.get("/v1/check", check)])

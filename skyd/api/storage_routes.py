"""`GET /v1/storage` and `POST /v1/storage/delete` (`skyctl storage ls` / `delete`): the
buckets skyd created for tasks, as their stores' labels say (skyd.buckets.registry)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from skyd.api.contract import endpoint
from skyd.api.identity import caller_of
from skyd.api.jsonio import json_response
from skyd.api.validation import Strict, json_body
from skyd.buckets.registry import BucketRegistry, BucketRow
from skyd.errors import ConflictError, NotFoundError, PermissionDeniedError

REGISTRY: web.AppKey[BucketRegistry] = web.AppKey("bucket_registry", BucketRegistry)
STORAGE_ADMINS: web.AppKey[str] = web.AppKey("storage_admin_group", str)
BucketName = Annotated[
    str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-_]*[a-z0-9]$")
]


class BucketView(BaseModel):
    name: str
    store: str = Field(description="s3 | gcs | azure | r2")
    url: str
    region: str | None = Field(description="where the store says it is (R2: auto)")
    created_by: str = Field(description="the user whose job created it")
    job: str = Field(description="the job that created it")
    persistent: bool = Field(description="false: deleted when the job that created it ends")
    account: str | None = Field(None, description="Azure storage account")


class StorageList(BaseModel):
    buckets: list[BucketView]
    unlisted: dict[str, str] = Field(description="store → why it was not listed")


class DeleteBody(Strict):
    names: list[BucketName] = Field(min_length=1, max_length=100)
    store: Literal["s3", "gcs", "azure", "r2"] | None = Field(
        None, description="only this store's bucket of that name"
    )
    force: bool = Field(False, description="delete persistent buckets too")


class Deleted(BaseModel):
    deleted: list[str] = Field(description="the URLs of the buckets deleted")


@endpoint(
    "GET", "/v1/storage", "Buckets skyd created for tasks, found by skyd's labels on each store",
    tag="storage", response=StorageList, errors=(),
)  # fmt: skip
async def list_storage(request: web.Request) -> web.Response:
    rows, unlisted = await asyncio.to_thread(request.app[REGISTRY].listing)
    return json_response({"buckets": [r.as_dict() for r in rows], "unlisted": unlisted})


def _chosen(rows: list[BucketRow], body: DeleteBody) -> list[BucketRow]:
    """The buckets `body` names, or the error that changes nothing."""
    chosen: list[BucketRow] = []
    missing = []
    for name in dict.fromkeys(body.names):
        found = [r for r in rows if r.name == name and body.store in (None, r.store)]
        if not found:
            missing.append(name)
        elif len(found) > 1:
            stores = ", ".join(r.store for r in found)
            raise ConflictError(
                f"{name} is a skyd bucket on {stores}; say which with --store STORE"
            )
        chosen.extend(found)
    if missing:
        raise NotFoundError(
            f"no bucket skyd created is named {', '.join(missing)} on the stores it can list; "
            "see `skyctl storage ls`"
        )
    return chosen


@endpoint(
    "POST", "/v1/storage/delete", "Delete buckets skyd created (persistent ones only with force)",
    tag="storage", body=DeleteBody, response=Deleted, errors=(400, 403, 404, 409),
)  # fmt: skip
async def delete_storage(request: web.Request) -> web.Response:
    body = await json_body(request, DeleteBody)
    caller = caller_of(request, request.app[STORAGE_ADMINS])
    registry = request.app[REGISTRY]
    rows, _ = await asyncio.to_thread(registry.listing)
    chosen = _chosen(rows, body)
    others = [r for r in chosen if r.created_by != caller.name and not caller.is_admin]
    if others:
        raise PermissionDeniedError(
            f"{others[0].url} was created by {others[0].created_by or 'another user'}'s job; "
            "only they or an admin may delete it"
        )
    kept = [r for r in chosen if r.persistent and not body.force]
    if kept:
        names = " ".join(r.name for r in kept)
        raise ConflictError(
            f"{', '.join(r.url for r in kept)} persistent (the task said persistent: true, "
            f"SkyPilot's default): nothing deleted; `skyctl storage delete --force {names}` "
            "deletes it and everything in it"
        )
    deleted = []
    for row in chosen:
        await asyncio.to_thread(registry.delete, row)
        deleted.append(row.url)
    return json_response({"deleted": deleted})


def add_storage_routes(app: web.Application, registry: BucketRegistry, admin_group: str) -> None:
    app[REGISTRY] = registry
    app[STORAGE_ADMINS] = admin_group
    app.add_routes(
        [web.get("/v1/storage", list_storage), web.post("/v1/storage/delete", delete_storage)]
    )

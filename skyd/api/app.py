"""The aiohttp application: its route modules, JSON errors, the event stream and operations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

import skyd
from skyd.accounting import Accountant
from skyd.api.accounting_routes import add_accounting_routes
from skyd.api.check_routes import add_check_routes
from skyd.api.cluster_routes import add_cluster_routes
from skyd.api.contract import endpoint
from skyd.api.job_routes import SCHEDULER, add_job_routes
from skyd.api.jsonio import json_response
from skyd.api.market_routes import add_market_routes
from skyd.api.openapi import openapi_document
from skyd.api.schemas import EventsQuery, EventView, Health, Heartbeat, OrphanReport
from skyd.api.storage_routes import add_storage_routes
from skyd.api.validation import query_params
from skyd.buckets.registry import BucketRegistry
from skyd.clusters import ClusterService
from skyd.errors import (
    ConflictError,
    InfeasibleError,
    NotFoundError,
    PermissionDeniedError,
    SkydError,
    SpecError,
)
from skyd.metrics import METRICS, Metrics, metrics_handler
from skyd.scheduler.driver import JobScheduler
from skyd.store import jobs as job_store

log = logging.getLogger("skyd.api")

STATUS_OF: list[tuple[type[SkydError], int]] = [
    (SpecError, 400),
    (NotFoundError, 404),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (InfeasibleError, 422),
]

HEARTBEAT_SECONDS = 15.0

ADMIN_GROUP: web.AppKey[str] = web.AppKey("admin_group", str)


def error_response(exc: SkydError) -> web.Response:
    status = 400 if exc.code == "bad_request" else 500
    for cls, code in STATUS_OF:
        if isinstance(exc, cls):
            status = code
            break
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    field = getattr(exc, "field", None)
    if field:
        body["field"] = field
    details = getattr(exc, "details", ())
    if details:
        body["errors"] = [{"message": d.message, "field": d.field} for d in details]
    return json_response(body, status=status)


@web.middleware
async def errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except SkydError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status >= 400:
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return json_response(
                {"code": "not_found" if exc.status == 404 else "http_error", "message": exc.reason},
                status=exc.status,
                headers=allow,
            )
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_response(
            {"code": "internal", "message": "internal error; see the daemon's log"}, status=500
        )


@endpoint(
    "GET",
    "/v1/events",
    "Every event after `since`, then live, as NDJSON (a heartbeat line every 15 s)",
    tag="events",
    query=EventsQuery,
    response=EventView | Heartbeat,
    content_type="application/x-ndjson",
)
async def events_stream(request: web.Request) -> web.StreamResponse:
    try:
        return await _events_stream(request)
    except ConnectionResetError:  # the client went away: nothing to answer
        return web.Response(status=499)


async def _events_stream(request: web.Request) -> web.StreamResponse:
    scheduler = request.app[SCHEDULER]
    query = query_params(request, EventsQuery)
    since = query.since
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async with scheduler.bus.subscribe() as queue:
        # subscribe first, then catch up from the store: nothing falls between the two
        last = since
        while True:
            backlog = job_store.events_since(scheduler.store, last)
            if not backlog:
                break
            for event in backlog:
                await response.write(json.dumps(event.to_json()).encode() + b"\n")
                last = event.seq
        if not query.follow:
            await response.write_eof()
            return response
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b'{"kind": "heartbeat"}\n')
                continue
            if event.seq <= last:
                continue
            last = event.seq
            await response.write(json.dumps(event.to_json()).encode() + b"\n")


@endpoint(
    "GET",
    "/v1/orphans",
    "What the last reconcile found running under this daemon's tags without a record",
    tag="operations",
    response=OrphanReport,
    errors=(),
)
async def orphans(request: web.Request) -> web.Response:
    """What the last reconcile found running under this daemon's tags without a record."""
    scheduler = request.app[SCHEDULER]
    report = scheduler.last_reconcile
    if report is None:
        return json_response({"at": None, "orphans": [], "errors": {}})
    return json_response(
        {
            "at": report.at,
            "adopted": report.adopted,
            "gone": report.gone,
            "orphans": [
                {
                    "provider": o.provider,
                    "instance_id": o.instance_id,
                    "state": o.state,
                    "job_id": o.job_id,
                    "action": o.action,
                }
                for o in report.orphans
            ],
            "errors": report.errors,
        }
    )


@endpoint("GET", "/v1/health", "Daemon status", tag="operations", response=Health, errors=())
async def health(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    return json_response(
        {
            "ok": True,
            "version": skyd.__version__,
            "providers": sorted(scheduler.providers),
            "pid": os.getpid(),
        }
    )


@endpoint("GET", "/v1/openapi.json", "This document", tag="operations", errors=())
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


prometheus_metrics = endpoint(
    "GET",
    "/metrics",
    "Prometheus metrics (text exposition format); see docs/api.md",
    tag="operations",
    content_type="text/plain",
    errors=(),
)(metrics_handler)


def build_app(
    scheduler: JobScheduler,
    admin_group: str,
    *,
    clusters: ClusterService | None = None,
    accountant: Accountant | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=8 * 1024 * 1024)
    app[ADMIN_GROUP] = admin_group
    add_market_routes(app, scheduler)
    add_check_routes(app, dict(scheduler.providers))
    add_storage_routes(app, BucketRegistry(scheduler.settings.data), admin_group)
    if clusters is not None:
        add_cluster_routes(app, clusters, admin_group)
    if accountant is not None:
        add_accounting_routes(app, accountant, admin_group)
    if metrics is not None:
        app[METRICS] = metrics
        app.router.add_get("/metrics", prometheus_metrics)
    add_job_routes(app, scheduler, admin_group)
    app.add_routes(
        [
            web.get("/v1/events", events_stream),
            web.get("/v1/health", health),
            web.get("/v1/orphans", orphans),
            web.get("/v1/openapi.json", openapi),
        ]
    )
    return app


async def serve_unix(
    app: web.Application, socket_path: Path, *, mode: int, group: str | None
) -> web.AppRunner:
    """Start serving on `socket_path` (mode/group set before anyone can connect)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o117)  # the socket is born 0660, never briefly world-writable
    try:
        site = web.UnixSite(runner, str(socket_path))
        await site.start()
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, mode)
    if group:
        import grp

        with contextlib.suppress(KeyError):
            os.chown(socket_path, -1, grp.getgrnam(group).gr_gid)
    return runner

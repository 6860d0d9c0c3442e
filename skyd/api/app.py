"""The aiohttp application: routes, JSON errors, streaming logs and events."""

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
from skyd.api.identity import CallerDirectory, caller_of
from skyd.api.jsonio import json_response
from skyd.api.log_views import log_sources, stream_sources
from skyd.api.machine_notes import machine_notes
from skyd.api.market_routes import add_market_routes
from skyd.api.openapi import openapi_document
from skyd.api.schemas import (
    EventsQuery,
    EventView,
    Health,
    Heartbeat,
    JobListQuery,
    JobPage,
    JobPath,
    JobView,
    LogsQuery,
    OrphanReport,
    SubmitRequest,
    job_view,
)
from skyd.api.storage_routes import add_storage_routes
from skyd.api.validation import BadRequest, json_body, path_params, query_params, uid_of
from skyd.buckets.registry import BucketRegistry
from skyd.buckets.report import annotate_mounts
from skyd.clusters import ClusterService
from skyd.errors import (
    ConflictError,
    InfeasibleError,
    NotFoundError,
    PermissionDeniedError,
    SkydError,
    SpecError,
)
from skyd.identity import Caller
from skyd.metrics import METRICS, Metrics, metrics_handler
from skyd.model import TERMINAL_STATES, JobState
from skyd.scheduler.driver import JobScheduler
from skyd.spec import ParseOptions, TaskSpec, command_task, parse_file
from skyd.spec.task import REDACTED
from skyd.spec.vocabulary import vocabulary_of
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store import pipelines as pipeline_store
from skyd.store.sealing import open_spec_json

log = logging.getLogger("skyd.api")

STATUS_OF: list[tuple[type[SkydError], int]] = [
    (SpecError, 400),
    (NotFoundError, 404),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (InfeasibleError, 422),
]

HEARTBEAT_SECONDS = 15.0
LOG_POLL_SECONDS = 0.2

SCHEDULER: web.AppKey[JobScheduler] = web.AppKey("scheduler", JobScheduler)
ADMIN_GROUP: web.AppKey[str] = web.AppKey("admin_group", str)
CALLERS: web.AppKey[CallerDirectory] = web.AppKey("callers", CallerDirectory)
ACCOUNTANT: web.AppKey[Accountant] = web.AppKey("accountant", Accountant)


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


def _caller(request: web.Request) -> Caller:
    return caller_of(request, request.app[CALLERS])


def _job_id(request: web.Request) -> int:
    return path_params(request, JobPath).job_id


_JOB_ERRORS = (400, 403, 404)


@endpoint(
    "POST",
    "/v1/jobs",
    "Submit a job (task YAML or a one-line command)",
    tag="jobs",
    body=SubmitRequest,
    response=JobView,
    status=201,
    errors=(400, 403, 422),
)
async def submit(request: web.Request) -> web.Response:
    caller = _caller(request)
    scheduler = request.app[SCHEDULER]
    body = await json_body(request, SubmitRequest)
    base_dir = Path(body.base_dir)
    if not base_dir.is_absolute():
        raise BadRequest(
            f"base_dir: must be an absolute path, got {body.base_dir[:80]!r}", "base_dir"
        )
    if (body.task_yaml is None) == (body.command is None):
        raise BadRequest("task_yaml: give exactly one of task_yaml and command", "task_yaml")
    if body.task_yaml is not None:
        options = ParseOptions(
            base_dir=base_dir,
            overrides=body.overrides,
            vocabulary=vocabulary_of(scheduler.market.catalog),
            max_workdir_bytes=scheduler.settings.max_workdir_bytes,
        )
        pipeline = parse_file(
            body.task_yaml, source=body.source or "task.yaml", options=options
        ).pipeline
        # where the task's buckets are, before it is placed (bounded; cached)
        await scheduler.learn_data(pipeline.stages)
        await scheduler.engine_known(pipeline.stages)
        if pipeline.is_pipeline:
            jobs = scheduler.submit_pipeline(pipeline, caller=caller, base_dir=str(base_dir))
            views = [job_view(job) for job in jobs]
            _add_pipelines(scheduler, views)
            # the first stage stands for the pipeline; every stage is listed
            return json_response({**views[0], "stages": views}, status=201)
        spec = pipeline.stages[0]
        if body.name:
            spec = spec.model_copy(update={"name": body.name})
    else:
        assert body.command is not None
        if not body.command:
            raise BadRequest("command: give the command to run after `--`", "command")
        spec = command_task(body.command, base_dir=base_dir, name=body.name)
    job = await scheduler.submit_grouped(spec, caller=caller, base_dir=str(base_dir))
    return json_response(job_view(job), status=201)


@endpoint(
    "GET",
    "/v1/jobs",
    "List jobs, newest first (keyset-paginated)",
    tag="jobs",
    query=JobListQuery,
    response=JobPage,
)
async def list_jobs(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    query = query_params(request, JobListQuery)
    states: list[JobState] | None = None
    if query.state is not None:
        states = []
        for raw in query.state.split(","):
            try:
                states.append(JobState(raw.strip().upper()))
            except ValueError:
                allowed = ", ".join(s.value for s in JobState)
                raise BadRequest(
                    f"state: unknown state {raw[:40]!r}; allowed: {allowed}", "state"
                ) from None
    elif not query.all:
        states = [s for s in JobState if s not in TERMINAL_STATES]
    limit, cursor = query.limit, query.cursor
    owner = uid_of("user", query.user) if query.user else None
    jobs = job_store.list_jobs(
        scheduler.store, states=states, owner_uid=owner, before_id=cursor, limit=limit
    )
    next_cursor = jobs[-1].id if len(jobs) == limit else None
    costs = _costs(request, [j.id for j in jobs])
    views = [
        job_view(
            j,
            cost_micros=costs.get(j.id),
            placement=scheduler.planned_placement(j),
            reason=scheduler.waiting_reason(j),
        )
        for j in jobs
    ]
    _add_pipelines(scheduler, views)
    return json_response({"jobs": views, "next_cursor": next_cursor})


def _add_pipelines(scheduler: JobScheduler, views: list[dict[str, Any]]) -> None:
    """Each view of a pipeline's stage says which pipeline and which stage it is."""
    stages = pipeline_store.stages_of(scheduler.store, [view["id"] for view in views])
    for view in views:
        stage = stages.get(view["id"])
        if stage is not None:
            view["pipeline"] = stage.to_json()


def _costs(request: web.Request, job_ids: list[int]) -> dict[int, int]:
    """Exact cost so far (the ledger's open stretches included), when accounting runs."""
    accountant = request.app.get(ACCOUNTANT)
    if accountant is None or not job_ids:
        return {}
    return accountant.job_cost_micros(job_ids)


@endpoint(
    "GET",
    "/v1/jobs/{job_id}",
    "One job with its event history",
    tag="jobs",
    path_params=JobPath,
    response=JobView,
    errors=_JOB_ERRORS,
)
async def show_job(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    job_id = _job_id(request)
    job = job_store.get_job(scheduler.store, job_id)
    events = job_store.job_events(scheduler.store, job_id)
    cost = _costs(request, [job_id]).get(job_id)
    view = job_view(
        job,
        events,
        cost_micros=cost,
        placement=scheduler.planned_placement(job),
        reason=scheduler.waiting_reason(job),
    )
    # what the task asked for, secrets redacted (ports, tiers and images are shown here)
    spec = TaskSpec.from_json(open_spec_json(job.spec_json))
    task = spec.public_summary()
    caller = _caller(request)
    if caller.uid != job.owner_uid and not caller.is_admin:
        # env values are the owner's business (tokens often sit in plain envs): names only
        envs = task.get("envs")
        if isinstance(envs, dict):
            task["envs"] = dict.fromkeys(envs, REDACTED)
    # how each bucket got onto the machine (FUSE mount or copy), once the attempt placed it
    annotate_mounts(task, scheduler.processes.attempt_dir(job))
    placed = scheduler.market.catalog.offer_by_key(str((job.placement or {}).get("offer_key")))
    machines = instance_store.instances_for_job(scheduler.store, job.id)
    task.update(machine_notes(job, spec, machines, placed))
    view["task"] = task
    _add_pipelines(scheduler, [view])
    return json_response(view)


@endpoint(
    "POST",
    "/v1/jobs/{job_id}/cancel",
    "Cancel a job (its owner or an admin)",
    tag="jobs",
    path_params=JobPath,
    response=JobView,
    errors=(*_JOB_ERRORS, 409),
)
async def cancel_job(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    job = await scheduler.cancel(_job_id(request), _caller(request))
    return json_response(job_view(job))


@endpoint(
    "GET",
    "/v1/jobs/{job_id}/logs",
    "The job's output; with follow=1 streamed until the job ends",
    tag="jobs",
    path_params=JobPath,
    query=LogsQuery,
    content_type="text/plain",
    errors=_JOB_ERRORS,
)
async def job_logs(request: web.Request) -> web.StreamResponse:
    try:
        return await _job_logs(request)
    except ConnectionResetError:
        return web.Response(status=499)


async def _job_logs(request: web.Request) -> web.StreamResponse:
    scheduler = request.app[SCHEDULER]
    caller = _caller(request)
    job_id = _job_id(request)
    query = query_params(request, LogsQuery)  # checked before any byte is sent
    follow, offset = query.follow, query.offset
    job = job_store.get_job(scheduler.store, job_id)
    if job.owner_uid != caller.uid and not caller.is_admin:
        raise PermissionDeniedError(f"the logs of job {job_id} are visible to its owner only")
    nodes = TaskSpec.from_json(open_spec_json(job.spec_json)).num_nodes
    if query.node >= nodes:
        raise SpecError(
            f"node: job {job_id} has {nodes} node(s), ranks 0 to {nodes - 1}; "
            f"{query.node} is not one of them",
            "node",
        )
    if query.node and query.all_nodes:
        raise SpecError(
            f"node: {query.node} with all_nodes asks for one node and for all of them;"
            " drop one of the two",
            "node",
        )
    sources = log_sources(
        lambda rank: scheduler.log_path(job_id, rank),
        nodes,
        query.node,
        query.all_nodes,
        scheduler.processes.runs_over_ssh(job),
    )
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    def has_ended() -> bool:
        return job_store.get_job(scheduler.store, job_id).state.is_terminal

    async def wait() -> None:
        await asyncio.sleep(LOG_POLL_SECONDS)  # a file has no change notification here

    await stream_sources(
        sources, offset, follow, job.state.is_terminal, response.write, has_ended, wait
    )
    await response.write_eof()
    return response


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
    app[SCHEDULER] = scheduler
    app[ADMIN_GROUP] = admin_group
    app[CALLERS] = CallerDirectory(admin_group)
    add_market_routes(app, scheduler)
    add_check_routes(app, dict(scheduler.providers))
    add_storage_routes(app, BucketRegistry(scheduler.settings.data), admin_group)
    if clusters is not None:
        add_cluster_routes(app, clusters, admin_group)
    if accountant is not None:
        app[ACCOUNTANT] = accountant
        add_accounting_routes(app, accountant, admin_group)
    if metrics is not None:
        app[METRICS] = metrics
        app.router.add_get("/metrics", prometheus_metrics)
    app.add_routes(
        [
            web.post("/v1/jobs", submit),
            web.get("/v1/jobs", list_jobs),
            web.get("/v1/jobs/{job_id}", show_job),
            web.post("/v1/jobs/{job_id}/cancel", cancel_job),
            web.get("/v1/jobs/{job_id}/logs", job_logs),
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

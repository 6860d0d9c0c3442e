"""The job API: submit, list, show and cancel jobs, and stream a job's logs.

Handlers raise skyd errors; the app's JSON error middleware turns them into responses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from skyd.api.accounting_routes import ACCOUNTANT
from skyd.api.contract import endpoint
from skyd.api.identity import CallerDirectory, caller_of
from skyd.api.jsonio import json_response
from skyd.api.log_views import log_sources, stream_sources
from skyd.api.machine_notes import machine_notes
from skyd.api.schemas import (
    CancelQuery,
    JobListQuery,
    JobPage,
    JobPath,
    JobView,
    LogsQuery,
    SubmitRequest,
    job_view,
)
from skyd.api.validation import (
    BadRequest,
    json_body,
    path_params,
    query_params,
    task_base_dir,
    uid_of,
)
from skyd.buckets.report import annotate_mounts
from skyd.errors import PermissionDeniedError, SpecError
from skyd.identity import Caller
from skyd.model import TERMINAL_STATES, JobState
from skyd.scheduler.driver import JobScheduler
from skyd.spec import ParseOptions, TaskSpec, command_task, parse_file
from skyd.spec.task import REDACTED
from skyd.spec.vocabulary import vocabulary_of
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store import pipelines as pipeline_store
from skyd.store import transfers as transfer_store
from skyd.store.sealing import open_spec_json

LOG_POLL_SECONDS = 0.2

SCHEDULER: web.AppKey[JobScheduler] = web.AppKey("scheduler", JobScheduler)
CALLERS: web.AppKey[CallerDirectory] = web.AppKey("callers", CallerDirectory)


def add_job_routes(app: web.Application, scheduler: JobScheduler, admin_group: str) -> None:
    app[SCHEDULER] = scheduler
    app[CALLERS] = CallerDirectory(admin_group)
    app.add_routes(
        [
            web.post("/v1/jobs", submit),
            web.get("/v1/jobs", list_jobs),
            web.get("/v1/jobs/{job_id}", show_job),
            web.post("/v1/jobs/{job_id}/cancel", cancel_job),
            web.get("/v1/jobs/{job_id}/logs", job_logs),
        ]
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
    base_dir = task_base_dir(body.base_dir, body.task_yaml, body.command)
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
    view["data_out"] = [
        {
            "what": out.what,
            "bytes": out.nbytes,
            "cost": out.micros / 1_000_000,
            "transfers": out.transfers,
            "last_at": out.last_ms / 1000,
        }
        for out in transfer_store.job_data_out(scheduler.store.conn, job_id)
    ]
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
    description="Cancels the job and its pipeline's later stages. The cancel is stored before"
    " anything is killed (a daemon restarted meanwhile finishes it), then runs in the"
    " background: the job's grace, its buckets written back, its instances given back. By"
    " default (wait=1, as before) the answer comes once they have ended; with wait=0 it comes"
    " at once, the job as it is with cancel_requested true. A cancel asked again, or of an"
    " ended job, answers with the job as it is and asks nothing new.",
    path_params=JobPath,
    query=CancelQuery,
    response=JobView,
    errors=(*_JOB_ERRORS, 409),
)
async def cancel_job(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    job_id = _job_id(request)
    wait = query_params(request, CancelQuery).wait  # refused before anything is stored
    job = await scheduler.cancel(job_id, _caller(request), wait=wait)
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

"""The cluster API: list, launch, exec on, stop, start, tear down and set autostop of clusters.

Handlers raise skyd errors; the app's JSON error middleware turns them into responses.
This module does not import skyd.api.app, so the app can import it without a cycle.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from skyd.api.contract import endpoint
from skyd.api.identity import CallerDirectory, caller_of
from skyd.api.jsonio import json_response
from skyd.api.schemas import EventView, Flag, JobView, job_view
from skyd.api.validation import (
    BadRequest,
    Query,
    Strict,
    json_body,
    path_params,
    query_params,
    task_base_dir,
)
from skyd.clusters import ClusterService
from skyd.identity import Caller
from skyd.model import MICROS_PER_DOLLAR
from skyd.spec import Overrides, ParseOptions, TaskSpec, command_task, parse_task
from skyd.store.clusters import ClusterRecord

Minutes = Annotated[int, Field(ge=0, le=10**7, description="minutes (up to ~19 years)")]


class ClusterPath(Query):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class ClustersQuery(Query):
    all: Flag = Field(False, description="include torn-down (DOWN) clusters")


class TaskBody(Strict):
    """A task to run: a task file's text or a command, and where its relative paths start."""

    task_yaml: str | None = Field(None, description="the task file's text (SkyPilot task YAML)")
    command: list[str] | None = Field(None, description="a one-line job instead of a task file")
    base_dir: str = Field(description="absolute directory that relative paths resolve against")
    source: str | None = Field(None, description="the task file's name, for error messages")
    job_name: str | None = Field(None, description="the job's name (default: the task's)")
    overrides: Overrides | None = Field(
        None, description="command-line overrides (--env, --secret, --gpus, --cloud, …)"
    )


class LaunchBody(TaskBody):
    name: str = Field(description="the cluster's name")
    idle_minutes: Minutes | None = Field(
        None, description="autostop after this many idle minutes (overrides the task's)"
    )
    down: bool = Field(False, description="with idle_minutes: tear down instead of stopping")


class StopBody(Strict):
    force: bool = Field(False, description="cancel the cluster's active jobs first")


class AutostopBody(Strict):
    idle_minutes: Minutes | None = Field(None, description="stop after this many idle minutes")
    down: bool = Field(False, description="tear down instead of stopping")
    cancel: bool = Field(False, description="turn autostop off")


class AutostopView(BaseModel):
    idle_minutes: int
    down: bool


class ClusterView(BaseModel):
    id: int
    name: str
    state: str = Field(description="INIT | UP | STOPPED | DOWN")
    owner: str
    owner_uid: int
    provider: str | None
    cloud: str | None
    region: str | None
    zone: str | None
    instance_type: str | None
    accelerators: str | None = Field(description='e.g. "T4:1"')
    spot: bool | None
    hourly_price: float | None
    instances: list[str]
    autostop: AutostopView | None
    idle_since: float | None
    active_jobs: list[int]
    created_at: float
    up_at: float | None
    ended_at: float | None
    reason: str | None
    jobs: list[JobView] | None = Field(None, description="GET /v1/clusters/{name} only")
    events: list[EventView] | None = Field(None, description="GET /v1/clusters/{name} only")


class ClusterList(BaseModel):
    clusters: list[ClusterView]


class Launched(BaseModel):
    cluster: ClusterView
    job: JobView


def cluster_view(
    service: ClusterService, cluster: ClusterRecord, *, detail: bool = False
) -> dict[str, Any]:
    """A cluster as the API shows it."""
    placement = cluster.placement or {}
    accelerator = placement.get("accelerator_name")
    price = placement.get("hourly_price_micros")
    active = service.jobs(cluster, active_only=True)
    view: dict[str, Any] = {
        "id": cluster.id,
        "name": cluster.name,
        "state": cluster.state.value,
        "owner": cluster.owner_name,
        "owner_uid": cluster.owner_uid,
        "provider": cluster.provider or None,
        "cloud": placement.get("cloud"),
        "region": placement.get("region"),
        "zone": placement.get("zone"),
        "instance_type": placement.get("instance_type"),
        "accelerators": f"{accelerator}:{placement.get('accelerator_count')}"
        if accelerator
        else None,
        "spot": placement.get("spot"),
        "hourly_price": price / MICROS_PER_DOLLAR if isinstance(price, int) else None,
        "instances": list(cluster.instance_ids),
        "autostop": None
        if cluster.autostop_minutes is None
        else {"idle_minutes": cluster.autostop_minutes, "down": cluster.autostop_down},
        "idle_since": cluster.idle_since,
        "active_jobs": [job.id for job in active],
        "created_at": cluster.created_at,
        "up_at": cluster.up_at,
        "ended_at": cluster.ended_at,
        "reason": cluster.reason,
    }
    if detail:
        view["jobs"] = [job_view(job) for job in service.jobs(cluster)]
        view["events"] = [event.to_json() for event in service.events(cluster)]
    return view


class ClusterRoutes:
    def __init__(self, service: ClusterService, admin_group: str) -> None:
        self.service = service
        self.callers = CallerDirectory(admin_group)

    def _caller(self, request: web.Request) -> Caller:
        return caller_of(request, self.callers)

    @endpoint(
        "GET", "/v1/clusters", "Clusters (without all=1, no DOWN ones)", tag="clusters",
        query=ClustersQuery, response=ClusterList,
    )  # fmt: skip
    async def list_clusters(self, request: web.Request) -> web.Response:
        include_down = query_params(request, ClustersQuery).all
        clusters = self.service.all_clusters(include_down=include_down)
        return json_response({"clusters": [cluster_view(self.service, c) for c in clusters]})

    @endpoint(
        "GET", "/v1/clusters/{name}", "One cluster with its jobs and events", tag="clusters",
        path_params=ClusterPath, response=ClusterView, errors=(400, 404),
    )  # fmt: skip
    async def show_cluster(self, request: web.Request) -> web.Response:
        cluster = self.service.get(_name(request))
        return json_response(cluster_view(self.service, cluster, detail=True))

    @endpoint(
        "POST", "/v1/clusters", "Launch a cluster and queue the task as its first job",
        tag="clusters", body=LaunchBody, response=Launched, status=201,
        errors=(400, 403, 409, 422),
    )  # fmt: skip
    async def launch(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await json_body(request, LaunchBody)
        spec = _spec_of(body, require_run=False)
        cluster, job = await self.service.launch(
            spec,
            name=body.name,
            caller=caller,
            base_dir=body.base_dir,
            job_name=body.job_name,
            idle_minutes=body.idle_minutes,
            down=body.down,
        )
        return json_response(
            {"cluster": cluster_view(self.service, cluster), "job": job_view(job)}, status=201
        )

    @endpoint(
        "POST", "/v1/clusters/{name}/exec", "Queue a job on a cluster (nothing launched)",
        tag="clusters", path_params=ClusterPath, body=TaskBody, response=JobView, status=201,
        errors=(400, 403, 404, 409),
    )  # fmt: skip
    async def exec(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await json_body(request, TaskBody)
        job = self.service.exec(
            _name(request),
            _spec_of(body),
            caller=caller,
            base_dir=body.base_dir,
            job_name=body.job_name,
        )
        return json_response(job_view(job), status=201)

    @endpoint(
        "POST", "/v1/clusters/{name}/stop", "Stop a cluster's instances (owner or admin)",
        tag="clusters", path_params=ClusterPath, body=StopBody, response=ClusterView,
        errors=(400, 403, 404, 409),
    )  # fmt: skip
    async def stop(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await json_body(request, StopBody)
        cluster = await self.service.stop(_name(request), caller, force=body.force)
        return json_response(cluster_view(self.service, cluster))

    @endpoint(
        "POST", "/v1/clusters/{name}/start", "Start a stopped cluster (owner or admin)",
        tag="clusters", path_params=ClusterPath, response=ClusterView,
        errors=(400, 403, 404, 409),
    )  # fmt: skip
    async def start(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        cluster = await self.service.start(_name(request), caller)
        return json_response(cluster_view(self.service, cluster))

    @endpoint(
        "POST", "/v1/clusters/{name}/down", "Tear a cluster down (owner or admin)",
        tag="clusters", path_params=ClusterPath, body=StopBody, response=ClusterView,
        errors=(400, 403, 404, 409),
    )  # fmt: skip
    async def down(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await json_body(request, StopBody)
        cluster = await self.service.down(_name(request), caller, force=body.force)
        return json_response(cluster_view(self.service, cluster))

    @endpoint(
        "POST", "/v1/clusters/{name}/autostop", "Set or cancel a cluster's autostop",
        tag="clusters", path_params=ClusterPath, body=AutostopBody, response=ClusterView,
        errors=(400, 403, 404),
    )  # fmt: skip
    async def autostop(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await json_body(request, AutostopBody)
        if body.cancel == (body.idle_minutes is not None):
            raise BadRequest(
                "idle_minutes: give either idle_minutes (e.g. 30) or cancel: true, not both and "
                "not neither",
                "idle_minutes",
            )
        cluster = self.service.set_autostop(
            _name(request),
            caller,
            idle_minutes=None if body.cancel else body.idle_minutes,
            down=body.down,
        )
        return json_response(cluster_view(self.service, cluster))


def add_cluster_routes(app: web.Application, service: ClusterService, admin_group: str) -> None:
    """Serve the cluster endpoints of docs/api.md on `app`."""
    routes = ClusterRoutes(service, admin_group)
    app.add_routes(
        [
            web.get("/v1/clusters", routes.list_clusters),
            web.post("/v1/clusters", routes.launch),
            web.get("/v1/clusters/{name}", routes.show_cluster),
            web.post("/v1/clusters/{name}/exec", routes.exec),
            web.post("/v1/clusters/{name}/stop", routes.stop),
            web.post("/v1/clusters/{name}/start", routes.start),
            web.post("/v1/clusters/{name}/down", routes.down),
            web.post("/v1/clusters/{name}/autostop", routes.autostop),
        ]
    )


def _name(request: web.Request) -> str:
    return path_params(request, ClusterPath).name


def _spec_of(body: TaskBody, *, require_run: bool = True) -> TaskSpec:
    base_dir = task_base_dir(body.base_dir, body.task_yaml, body.command)
    if body.task_yaml is not None:
        # a cluster may be launched with only setup (SkyPilot's `sky launch`); exec needs run
        options = ParseOptions(base_dir=base_dir, overrides=body.overrides, require_run=require_run)
        spec = parse_task(body.task_yaml, source=body.source or "task.yaml", options=options)
        return spec
    assert body.command is not None
    return command_task(body.command, base_dir=base_dir, name=body.job_name)

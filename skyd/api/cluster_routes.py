"""The cluster API: list, launch, exec on, stop, start, tear down and set autostop of clusters.

Handlers raise skyd errors; the app's JSON error middleware turns them into responses.
This module does not import skyd.api.app, so the app can import it without a cycle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skyd.api.identity import CallerDirectory, caller_of
from skyd.api.schemas import job_view
from skyd.clusters import ClusterService
from skyd.errors import SkydError
from skyd.model import MICROS_PER_DOLLAR
from skyd.scheduler.service import Caller
from skyd.spec import Overrides, ParseOptions, TaskSpec, command_task, parse_task
from skyd.store.clusters import ClusterRecord

BodyT = TypeVar("BodyT", bound=BaseModel)


class ClusterRequestError(SkydError):
    code = "bad_request"  # answered with 400 by the app's error middleware


class TaskBody(BaseModel):
    """A task to run: a task file's text or a command, and where its relative paths start."""

    model_config = ConfigDict(extra="forbid")

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
    idle_minutes: int | None = Field(
        None, description="autostop after this many idle minutes (overrides the task's)"
    )
    down: bool = Field(False, description="with idle_minutes: tear down instead of stopping")


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="cancel the cluster's active jobs first")


class AutostopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idle_minutes: int | None = Field(None, description="stop after this many idle minutes")
    down: bool = Field(False, description="tear down instead of stopping")
    cancel: bool = Field(False, description="turn autostop off")


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

    async def list_clusters(self, request: web.Request) -> web.Response:
        include_down = request.query.get("all") in ("1", "true", "yes")
        clusters = self.service.all_clusters(include_down=include_down)
        return web.json_response({"clusters": [cluster_view(self.service, c) for c in clusters]})

    async def show_cluster(self, request: web.Request) -> web.Response:
        cluster = self.service.get(request.match_info["name"])
        return web.json_response(cluster_view(self.service, cluster, detail=True))

    async def launch(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await _body(request, LaunchBody)
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
        return web.json_response(
            {"cluster": cluster_view(self.service, cluster), "job": job_view(job)}, status=201
        )

    async def exec(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await _body(request, TaskBody)
        job = self.service.exec(
            request.match_info["name"],
            _spec_of(body),
            caller=caller,
            base_dir=body.base_dir,
            job_name=body.job_name,
        )
        return web.json_response(job_view(job), status=201)

    async def stop(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await _body(request, StopBody)
        cluster = await self.service.stop(request.match_info["name"], caller, force=body.force)
        return web.json_response(cluster_view(self.service, cluster))

    async def start(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        cluster = await self.service.start(request.match_info["name"], caller)
        return web.json_response(cluster_view(self.service, cluster))

    async def down(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await _body(request, StopBody)
        cluster = await self.service.down(request.match_info["name"], caller, force=body.force)
        return web.json_response(cluster_view(self.service, cluster))

    async def autostop(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = await _body(request, AutostopBody)
        if body.cancel == (body.idle_minutes is not None):
            raise ClusterRequestError(
                "give either idle_minutes (e.g. 30) or cancel: true, not both and not neither"
            )
        cluster = self.service.set_autostop(
            request.match_info["name"],
            caller,
            idle_minutes=None if body.cancel else body.idle_minutes,
            down=body.down,
        )
        return web.json_response(cluster_view(self.service, cluster))


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


async def _body(request: web.Request, model: type[BodyT]) -> BodyT:
    raw: Any = {}
    if request.can_read_body:
        text = await request.text()
        if text.strip():
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ClusterRequestError(f"request body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ClusterRequestError(f"{where}: {first['msg']}") from None


def _spec_of(body: TaskBody, *, require_run: bool = True) -> TaskSpec:
    base_dir = Path(body.base_dir)
    if not base_dir.is_absolute():
        raise ClusterRequestError(f"base_dir must be an absolute path, got {body.base_dir!r}")
    if (body.task_yaml is None) == (body.command is None):
        raise ClusterRequestError("give exactly one of task_yaml and command")
    if body.task_yaml is not None:
        # a cluster may be launched with only setup (SkyPilot's `sky launch`); exec needs run
        options = ParseOptions(base_dir=base_dir, overrides=body.overrides, require_run=require_run)
        return parse_task(body.task_yaml, source=body.source or "task.yaml", options=options)
    assert body.command is not None
    return command_task(body.command, base_dir=base_dir, name=body.job_name)

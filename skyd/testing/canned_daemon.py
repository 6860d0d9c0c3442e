"""A stand-in skyd serving the real v1 wire protocol from canned data (fixed timestamps, any
number of jobs, events on demand): for the dashboard's snapshot tests and its benchmark.
The dashboard's behaviour tests run against the real daemon; this double only makes
rendering deterministic.

Endpoints it does not hold data for answer aiohttp's own 404, as an older daemon would.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from skyd.api.schemas import Flag

JsonObject = dict[str, Any]

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"})
FAKE_OWNER = "ana"
# the daemon's query flags (skyd.api.schemas.Flag) are read by pydantic: the fake reads them so
_FLAG = TypeAdapter(Flag)
FAKE_UID = 1000


def fake_job(job_id: int, *, at: float, state: str = "PENDING", **fields: Any) -> JsonObject:
    """A job object shaped like the daemon's, with the given fields overridden."""
    job: JsonObject = {
        "id": job_id,
        "name": f"job-{job_id}",
        "state": state,
        "owner": FAKE_OWNER,
        "owner_uid": FAKE_UID,
        "project": None,
        "priority": 0,
        "created_at": at,
        "updated_at": at,
        "started_at": None,
        "ended_at": None,
        "exit_code": None,
        "reason": None,
        "placement": None,
        "deadline": None,
        "preemptions": 0,
        "restarts": 0,
        "cost": 0.0,
        "cancel_requested": False,
    }
    job.update(fields)
    return job


def fake_placement(
    cloud: str, region: str, instance_type: str, *, spot: bool, hourly_price: float, **more: Any
) -> JsonObject:
    placement: JsonObject = {
        "provider": cloud,
        "cloud": cloud,
        "region": region,
        "zone": f"{region}-a",
        "instance_type": instance_type,
        "accelerator_name": None,
        "accelerator_count": 0,
        "spot": spot,
        "hourly_price": hourly_price,
        "expected_cost": None,
        "why": "cheapest feasible offer",
    }
    placement.update(more)
    return placement


@dataclass
class FakeDaemonState:
    """What the fake daemon knows; changed only on the fake's own event loop."""

    jobs: dict[int, JsonObject] = field(default_factory=dict)
    events: list[JsonObject] = field(default_factory=list)
    logs: dict[int, str] = field(default_factory=dict)
    # path → JSON payload for the endpoints beyond jobs/events (clusters, prices, costs, …);
    # the key may carry the decoded query, parameters sorted: "/v1/costs?by=user".
    extras: dict[str, Any] = field(default_factory=dict)
    subscribers: set[asyncio.Queue[JsonObject]] = field(default_factory=set)
    # (action, cluster) of every POST /v1/clusters/{name}/{stop|start|down} received
    cluster_actions: list[tuple[str, str]] = field(default_factory=list)
    # the wait flag of every POST /v1/jobs/{id}/cancel received
    cancel_waits: list[bool] = field(default_factory=list)
    # a cancel asked with wait=0 ends the job right after its answer; False: it stays under
    # way (the job's cancel_requested true) until the test calls `finish_cancel`
    finish_cancels: bool = True


class FakeDaemon:
    """The fake's aiohttp application and the operations tests and benchmarks drive it with."""

    def __init__(self, state: FakeDaemonState | None = None) -> None:
        self.state = state or FakeDaemonState()
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/v1/health", self._health),
                web.get("/v1/jobs", self._list_jobs),
                web.get("/v1/jobs/{job_id}", self._show_job),
                web.post("/v1/jobs/{job_id}/cancel", self._cancel),
                web.get("/v1/jobs/{job_id}/logs", self._logs),
                web.get("/v1/events", self._events),
                web.post("/v1/clusters/{name}/{action:stop|start|down}", self._cluster_action),
                web.get("/v1/{tail:.*}", self._extra),
            ]
        )

    def add_job(self, job: JsonObject) -> None:
        self.state.jobs[int(job["id"])] = job

    def publish(
        self,
        job_id: int | None,
        kind: str,
        *,
        at: float,
        state: str | None = None,
        reason: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """Record an event (applying its state to the job) and send it to every stream."""
        event: JsonObject = {
            "seq": len(self.state.events) + 1,
            "job_id": job_id,
            "at": at,
            "kind": kind,
            "state": state,
            "reason": reason,
            "data": dict(data or {}),
        }
        self.state.events.append(event)
        if job_id is not None and job_id in self.state.jobs:
            job = self.state.jobs[job_id]
            job["updated_at"] = at
            if state:
                job["state"] = state
                if state == "RUNNING" and job.get("started_at") is None:
                    job["started_at"] = at
                if state in TERMINAL:
                    job["ended_at"] = at
        for queue in self.state.subscribers:
            queue.put_nowait(event)
        return event

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "version": "0.1.0-fake", "providers": ["local"], "pid": 1}
        )

    async def _list_jobs(self, request: web.Request) -> web.Response:
        include_all = request.query.get("all") in ("1", "true", "yes")
        limit = int(request.query.get("limit", "100"))
        cursor = int(request.query["cursor"]) if request.query.get("cursor") else None
        chosen = [
            job
            for job_id, job in sorted(self.state.jobs.items(), reverse=True)
            if (include_all or job["state"] not in TERMINAL) and (cursor is None or job_id < cursor)
        ][:limit]
        next_cursor = chosen[-1]["id"] if len(chosen) == limit else None
        return web.json_response({"jobs": chosen, "next_cursor": next_cursor})

    def _job_or_404(self, request: web.Request) -> JsonObject:
        job_id = int(request.match_info["job_id"])
        if job_id not in self.state.jobs:
            raise web.HTTPNotFound(
                text=json.dumps({"code": "not_found", "message": f"no job {job_id}"}),
                content_type="application/json",
            )
        return self.state.jobs[job_id]

    async def _show_job(self, request: web.Request) -> web.Response:
        job = self._job_or_404(request)
        events = [e for e in self.state.events if e["job_id"] == job["id"]]
        return web.json_response({**job, "events": events})

    async def _cancel(self, request: web.Request) -> web.Response:
        """As the daemon: wait=1 (the default) answers the job CANCELLED; wait=0 answers it
        as it is with cancel_requested true, then cancels it right after the answer."""
        job = self._job_or_404(request)
        text = request.query.get("wait", "1")
        try:
            wait = _FLAG.validate_python(text)
        except ValidationError:
            message = f"wait: {text!r} is not a yes/no flag; use 1 or 0 (true, false)"
            return web.json_response(
                {"code": "bad_request", "message": message, "field": "wait"}, status=400
            )
        self.state.cancel_waits.append(wait)
        if job["state"] in TERMINAL:
            return web.json_response(job)
        if wait:
            self.finish_cancel(job["id"])
            return web.json_response(job)
        if not job.get("cancel_requested"):
            job["cancel_requested"] = True
            at = float(job["updated_at"]) + 1.0
            self.publish(job["id"], "cancel_requested", at=at, reason="cancel requested by ana")
        answer = dict(job)
        if self.state.finish_cancels:
            asyncio.get_running_loop().call_soon(self.finish_cancel, job["id"])
        return web.json_response(answer)

    def finish_cancel(self, job_id: int) -> None:
        """The job's kill is done: it ends CANCELLED (call on the fake's loop)."""
        job = self.state.jobs[job_id]
        job["cancel_requested"] = False
        at = float(job["updated_at"]) + 1.0
        self.publish(job_id, "state", at=at, state="CANCELLED", reason="cancelled by ana")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        job = self._job_or_404(request)
        offset = int(request.query.get("offset", "0"))
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(self.state.logs.get(job["id"], "").encode()[offset:])
        await response.write_eof()
        return response

    async def _events(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("since", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        queue: asyncio.Queue[JsonObject] = asyncio.Queue()
        self.state.subscribers.add(queue)
        try:
            last = since
            for event in list(self.state.events):
                if event["seq"] > last:
                    await response.write(json.dumps(event).encode() + b"\n")
                    last = event["seq"]
            while True:
                event = await queue.get()
                if event["seq"] > last:
                    last = event["seq"]
                    await response.write(json.dumps(event).encode() + b"\n")
        except ConnectionResetError:
            return response  # the dashboard went away, as clients do
        finally:
            self.state.subscribers.discard(queue)

    async def _cluster_action(self, request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        clusters = self.state.extras.get("/v1/clusters", {}).get("clusters", [])
        for cluster in clusters:
            if cluster.get("name") == name:
                self.state.cluster_actions.append((action, name))
                cluster["state"] = {"stop": "STOPPED", "start": "INIT", "down": "DOWN"}[action]
                return web.json_response(cluster)
        raise web.HTTPNotFound(
            text=json.dumps({"code": "not_found", "message": f"no cluster {name!r}"}),
            content_type="application/json",
        )

    async def _extra(self, request: web.Request) -> web.Response:
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
        for key in (f"{request.path}?{query}", request.path):
            if key in self.state.extras:
                return web.json_response(self.state.extras[key])
        raise web.HTTPNotFound()


class FakeDaemonThread:
    """The fake served on a Unix socket from its own event loop in a background thread."""

    def __init__(self, fake: FakeDaemon, socket_path: Path) -> None:
        self.fake = fake
        self.socket_path = str(socket_path)
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-skyd", daemon=True)

    def start(self) -> FakeDaemonThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(
            self.fake.app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.UnixSite(self._runner, self.socket_path).start()

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a (plain) function on the fake's loop, e.g. `publish`, and return its result."""

        async def run() -> Any:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # open event streams never end by themselves: end them before the loop goes
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

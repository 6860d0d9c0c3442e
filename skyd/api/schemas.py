"""Request and response shapes of the API (validation and the OpenAPI document share them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from skyd.api.validation import Int64, Query, RowId, Strict, UserRef
from skyd.spec import Overrides
from skyd.store.records import EventRecord, JobRecord

MAX_PAGE = 1000
Flag = bool  # query flags: 1/0, true/false, yes/no, on/off


class ErrorDetail(BaseModel):
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable error code")
    message: str = Field(description="what is wrong, with the value and the fix")
    field: str | None = Field(None, description="the request field at fault")
    errors: list[ErrorDetail] | None = Field(
        None, description="every problem, when a task file has several (message has one a line)"
    )


class JobPath(Query):
    job_id: RowId


class CancelQuery(Query):
    wait: Flag = Field(
        True,
        description="1 (the default, as before the cancel ran in the background): answer once"
        " the job and its later pipeline stages have ended; 0: answer at once, the job as it"
        " is with cancel_requested true while it is being stopped (skyctl and the dashboard"
        " ask for 0)",
    )


class JobListQuery(Query):
    state: str | None = Field(
        None, max_length=200, description="comma-separated states (PENDING,RUNNING,…)"
    )
    user: UserRef | None = Field(
        None, description="a user name or numeric uid (only that owner's jobs are listed)"
    )
    all: Flag = Field(False, description="include finished jobs")
    limit: int = Field(100, ge=1, le=MAX_PAGE, description="page size")
    cursor: RowId | None = Field(None, description="next_cursor of the previous page")


class LogsQuery(Query):
    follow: Flag = Field(False, description="stream until the job ends")
    offset: Int64 = Field(0, description="byte offset to start from")
    node: Int64 = Field(
        0, description="which node of a multi-node job (its SKYPILOT_NODE_RANK; 0: the head)"
    )
    all_nodes: Flag = Field(
        False, description="every node's output, rank K's lines prefixed \"(node K) \""
    )


class EventsQuery(Query):
    since: Int64 = Field(0, description="events with a larger seq")
    follow: Flag = Field(True, description="then stream new events live (0: end after the past)")


class SubmitRequest(Strict):
    task_yaml: str | None = Field(None, description="the task file's text (SkyPilot task YAML)")
    command: list[str] | None = Field(None, description="a one-line job instead of a task file")
    base_dir: str = Field(description="absolute directory that relative paths resolve against")
    name: str | None = None
    source: str | None = Field(None, description="the task file's name, for error messages")
    overrides: Overrides | None = Field(
        None, description="command-line overrides (--env, --secret, --gpus, --cloud, …)"
    )


class PlacementView(BaseModel):
    provider: str | None = None
    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    accelerator_name: str | None = None
    accelerator_count: int | None = None
    spot: bool | None = None
    hourly_price: float | None = None
    expected_cost: float | None = None
    egress_cost: float | None = Field(
        None, description="moving the task's data there (part of expected_cost)"
    )
    why: str | None = None
    history: list[str] | None = Field(
        None,
        description="the deadline policy's placements: the spot availability history each"
        " zone showed it, one line per zone",
    )
    spot_history: list[dict[str, Any]] | None = Field(
        None,
        description="the same as figures per zone: zone, observed_hours, up_fraction,"
        " mean_up_hours, mean_outage_hours, step_seconds",
    )
    changeover: str | None = Field(
        None,
        description="the deadline policy's placements: the changeover it planned with and"
        " where that came from (configured, or measured of recent launches)",
    )
    changeover_figures: dict[str, Any] | None = Field(
        None,
        description="the same as figures: hours (used), configured_hours, measured_hours"
        " (null: no launch measured), launches",
    )


class EventView(BaseModel):
    seq: int
    job_id: int | None
    at: float
    kind: str
    state: str | None
    reason: str
    data: dict[str, Any]


class PipelineStageView(BaseModel):
    id: int = Field(description="the pipeline's id: its first stage's job id")
    name: str | None
    stage: int = Field(description="this job's stage, from 1")
    stages: int


class Heartbeat(BaseModel):
    """A line of /v1/events sent every 15 s when nothing happens (keeps proxies from closing)."""

    kind: str = Field(description='"heartbeat"')


class DataOutView(BaseModel):
    what: str = Field(description="checkpoint, log or bucket")
    bytes: int
    cost: float = Field(description="dollars charged for these bytes")
    transfers: int = Field(description="how many pulls, log batches or bucket copies")
    last_at: float = Field(description="when the last of them was charged")


class JobView(BaseModel):
    id: int
    name: str
    state: str
    owner: str
    owner_uid: int
    project: str | None
    priority: int
    created_at: float
    updated_at: float
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    reason: str | None
    placement: PlacementView | None
    deadline: float | None
    preemptions: int
    restarts: int
    cost: float
    cancel_requested: bool = Field(
        False,
        description="a cancel was asked and is under way: the job is being stopped (its"
        " grace, its buckets written back, its instances given back) and ends CANCELLED, or"
        " with its work's own outcome if that ended before the kill reached it",
    )
    pipeline: PipelineStageView | None = None
    stages: list[JobView] | None = Field(
        None, description="on submitting a pipeline: every stage's job, in order"
    )
    events: list[EventView] | None = None
    task: dict[str, Any] | None = Field(
        None, description="GET /v1/jobs/{job_id}: what the task asked for, secrets redacted"
    )
    data_out: list[DataOutView] | None = Field(
        None,
        description="GET /v1/jobs/{job_id}: data transfer charged to the job (egress), by what"
        " moved: checkpoint pulls, log reads, bucket data",
    )


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: int | None


class Health(BaseModel):
    ok: bool
    version: str
    providers: list[str]
    pid: int


class OrphanView(BaseModel):
    provider: str
    instance_id: str
    state: str
    job_id: int | None
    action: str


class OrphanReport(BaseModel):
    at: float | None = Field(description="when the last reconcile ran (null: not yet)")
    adopted: int = 0
    gone: int = 0
    orphans: list[OrphanView]
    errors: dict[str, str]


def job_view(
    job: JobRecord,
    events: list[EventRecord] | None = None,
    cost_micros: int | None = None,
    placement: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A job as the API shows it (plain dict: the hot path of `queue`)."""
    view: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "owner": job.owner_name,
        "owner_uid": job.owner_uid,
        "project": job.project,
        "priority": job.priority,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "exit_code": job.exit_code,
        "reason": reason or job.reason,
        "placement": placement if placement is not None else job.placement,
        "deadline": job.deadline,
        "preemptions": job.preemptions,
        "restarts": job.restarts,
        "cost": (job.cost_micros if cost_micros is None else cost_micros) / 1_000_000,
        "cancel_requested": job.cancelling,
    }
    if events is not None:
        view["events"] = [e.to_json() for e in events]
    return view

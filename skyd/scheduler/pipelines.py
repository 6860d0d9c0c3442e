"""Pipelines: stage k+1 of a chain may start only once stage k SUCCEEDED; if stage k ended
any other way, the later stages are cancelled (they would run without their inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from skyd.model import JobState
from skyd.spec import TaskSpec
from skyd.spec.upstream import UpstreamData
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store import pipelines as pipeline_store
from skyd.store.pipelines import StageRecord
from skyd.store.records import JobRecord


@dataclass(frozen=True, slots=True)
class Held:
    """The stage waits for its predecessor; `cancel` when that one can no longer succeed."""

    reason: str
    cancel: bool = False


def pipeline_hold(store: Store, job: JobRecord) -> Held | None:
    """Why a PENDING job may not start yet because of its pipeline (None: it may)."""
    found = _stage_before(store, job)
    if found is None:
        return None
    stage, previous = found
    which = f"stage {stage.stage} (job {previous.id})"
    of = f" of pipeline {stage.name}" if stage.name else f" of pipeline {stage.pipeline_id}"
    if previous.state == JobState.SUCCEEDED:
        return None
    if previous.state.is_terminal:
        return Held(
            f"{which}{of} ended {previous.state.value}; the stages after it do not run",
            cancel=True,
        )
    return Held(f"waiting for {which}{of} to succeed (it is {previous.state.value})")


def with_upstream(store: Store, job: JobRecord, spec: TaskSpec) -> TaskSpec:
    """`spec` with its inputs from the stage before, priced from where that stage ran: the
    inputs it names that the stage before wrote (its `outputs`), or — naming none — all that
    stage wrote (SkyPilot's chain DAG: a child reads its parent's outputs). Unchanged for a
    first stage, or when the stage before wrote nothing or never ran anywhere."""
    found = _stage_before(store, job)
    if found is None:
        return spec
    stage, previous = found
    placement = previous.placement or {}
    cloud, region = placement.get("cloud"), placement.get("region")
    if previous.state != JobState.SUCCEEDED or not cloud or not region:
        return spec
    before_spec = TaskSpec.from_json(previous.spec_json)
    return chain_upstream(spec, before_spec, stage.stage - 1, previous.id, str(cloud), str(region))


def chain_upstream(
    spec: TaskSpec,
    before: TaskSpec,
    stage: int,
    job_id: int | None,
    cloud: str,
    region: str,
) -> TaskSpec:
    """`spec` reading what `before` (stage `stage`, in `cloud`/`region`) wrote."""
    wrote = before.outputs
    shared = {u: gb for u, gb in spec.inputs.items() if _same(u, wrote)}
    gigabytes = shared if spec.inputs else dict(wrote)
    if not gigabytes:
        return spec
    upstream = UpstreamData(
        stage=stage, job_id=job_id, cloud=cloud, region=region, gigabytes=gigabytes
    )
    return spec.model_copy(update={"upstream": upstream})


def _stage_before(store: Store, job: JobRecord) -> tuple[StageRecord, JobRecord] | None:
    """The job's pipeline stage and the job of the stage before it (None: not in a pipeline,
    or its first stage)."""
    stage = pipeline_store.stage_of(store, job.id)
    if stage is None or stage.stage == 0:
        return None
    before = pipeline_store.stage_job(store, stage.pipeline_id, stage.stage - 1)
    if before is None:
        return None
    return stage, job_store.get_job(store, before)


def _same(url: str, urls: Mapping[str, float]) -> bool:
    return url.rstrip("/") in {u.rstrip("/") for u in urls}

"""Pipelines: stage k+1 of a chain may start only once stage k SUCCEEDED; if stage k ended
any other way, the later stages are cancelled (they would run without their inputs)."""

from __future__ import annotations

from dataclasses import dataclass

from skyd.model import JobState
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store import pipelines as pipeline_store
from skyd.store.records import JobRecord


@dataclass(frozen=True, slots=True)
class Held:
    """The stage waits for its predecessor; `cancel` when that one can no longer succeed."""

    reason: str
    cancel: bool = False


def pipeline_hold(store: Store, job: JobRecord) -> Held | None:
    """Why a PENDING job may not start yet because of its pipeline (None: it may)."""
    stage = pipeline_store.stage_of(store, job.id)
    if stage is None or stage.stage == 0:
        return None
    before = pipeline_store.stage_job(store, stage.pipeline_id, stage.stage - 1)
    if before is None:
        return None
    previous = job_store.get_job(store, before)
    which = f"stage {stage.stage} (job {before})"
    of = f" of pipeline {stage.name}" if stage.name else f" of pipeline {stage.pipeline_id}"
    if previous.state == JobState.SUCCEEDED:
        return None
    if previous.state.is_terminal:
        return Held(
            f"{which}{of} ended {previous.state.value}; the stages after it do not run",
            cancel=True,
        )
    return Held(f"waiting for {which}{of} to succeed (it is {previous.state.value})")

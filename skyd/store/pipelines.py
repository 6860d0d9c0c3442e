"""Pipelines in the store: several jobs submitted together as ordered stages of one chain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from skyd.store.db import Store
from skyd.store.jobs import insert_job_in
from skyd.store.records import EventRecord, JobRecord


@dataclass(frozen=True, slots=True)
class StageRecord:
    """Where one job sits in its pipeline (`stage` counts from 0)."""

    job_id: int
    pipeline_id: int
    stage: int
    stages: int
    name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.pipeline_id,
            "name": self.name,
            "stage": self.stage + 1,
            "stages": self.stages,
        }


def insert_pipeline(
    store: Store, name: str | None, new_jobs: Sequence[dict[str, Any]]
) -> list[tuple[JobRecord, EventRecord]]:
    """Store every stage (each with its "submitted" event) and their order in one
    transaction: a pipeline is stored whole or not at all."""
    stored: list[tuple[JobRecord, EventRecord]] = []
    with store.transaction() as conn:
        for index, new_job in enumerate(new_jobs):
            reason = f"submitted by {new_job['owner_name']} as stage {index + 1} of {len(new_jobs)}"
            if name:
                reason += f" of pipeline {name}"
            stored.append(insert_job_in(conn, **new_job, reason=reason))
        first = stored[0][0].id
        conn.executemany(
            "INSERT INTO pipeline_stages (job_id, pipeline_id, stage, stages, name)"
            " VALUES (?, ?, ?, ?, ?)",
            [(job.id, first, index, len(stored), name) for index, (job, _) in enumerate(stored)],
        )
    return stored


def _record(row: Any) -> StageRecord:
    return StageRecord(
        job_id=row["job_id"],
        pipeline_id=row["pipeline_id"],
        stage=row["stage"],
        stages=row["stages"],
        name=row["name"],
    )


def stages_of(store: Store, job_ids: Iterable[int]) -> dict[int, StageRecord]:
    """The pipeline stage of each of these jobs that belongs to one."""
    ids = list(job_ids)
    found: dict[int, StageRecord] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = store.conn.execute(
            f"SELECT * FROM pipeline_stages WHERE job_id IN ({marks})", chunk
        ).fetchall()
        found.update((row["job_id"], _record(row)) for row in rows)
    return found


def pipeline_of(store: Store, pipeline_id: int) -> list[StageRecord]:
    """Every stage of one pipeline, in order."""
    rows = store.conn.execute(
        "SELECT * FROM pipeline_stages WHERE pipeline_id = ? ORDER BY stage", (pipeline_id,)
    ).fetchall()
    return [_record(row) for row in rows]


def stage_of(store: Store, job_id: int) -> StageRecord | None:
    row = store.conn.execute("SELECT * FROM pipeline_stages WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else _record(row)


def stage_job(store: Store, pipeline_id: int, stage: int) -> int | None:
    """The job id of one stage of a pipeline."""
    row = store.conn.execute(
        "SELECT job_id FROM pipeline_stages WHERE pipeline_id = ? AND stage = ?",
        (pipeline_id, stage),
    ).fetchone()
    return None if row is None else int(row["job_id"])


def later_stages(store: Store, job_id: int) -> list[int]:
    """The jobs of the stages after this job's, in order (none for a plain job)."""
    own = stage_of(store, job_id)
    if own is None:
        return []
    rows = store.conn.execute(
        "SELECT job_id FROM pipeline_stages WHERE pipeline_id = ? AND stage > ? ORDER BY stage",
        (own.pipeline_id, own.stage),
    ).fetchall()
    return [int(row["job_id"]) for row in rows]

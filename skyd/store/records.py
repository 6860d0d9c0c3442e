"""Typed rows read from the store (jobs, events, instances)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from skyd.model import JobState


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    name: str
    owner_uid: int
    owner_name: str
    project: str | None
    priority: int
    state: JobState
    spec_json: str
    base_dir: str
    created_at: float
    updated_at: float
    started_at: float | None
    ended_at: float | None
    deadline: float | None
    exit_code: int | None
    reason: str | None
    placement: dict[str, Any] | None
    attempt: int
    preemptions: int
    restarts: int
    cost_micros: int
    # who asked for a cancel still under way or done (None: no cancel was asked)
    cancel_requested_by: str | None = None

    @property
    def cancelling(self) -> bool:
        """A cancel was asked and the job has not ended yet (the kill runs in the background)."""
        return self.cancel_requested_by is not None and not self.state.is_terminal

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        placement = row["placement_json"]
        return cls(
            id=row["id"],
            name=row["name"],
            owner_uid=row["owner_uid"],
            owner_name=row["owner_name"],
            project=row["project"],
            priority=row["priority"],
            state=JobState(row["state"]),
            spec_json=row["spec_json"],
            base_dir=row["base_dir"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            deadline=row["deadline"],
            exit_code=row["exit_code"],
            reason=row["reason"],
            placement=json.loads(placement) if placement else None,
            attempt=row["attempt"],
            preemptions=row["preemptions"],
            restarts=row["restarts"],
            cost_micros=row["cost_micros"],
            cancel_requested_by=row["cancel_requested_by"],
        )


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    job_id: int | None
    at: float
    kind: str
    state: str | None
    reason: str
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> EventRecord:
        return cls(
            seq=row["seq"],
            job_id=row["job_id"],
            at=row["at"],
            kind=row["kind"],
            state=row["state"],
            reason=row["reason"],
            data=json.loads(row["data_json"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "job_id": self.job_id,
            "at": self.at,
            "kind": self.kind,
            "state": self.state,
            "reason": self.reason,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    provider: str
    instance_id: str
    job_id: int | None
    attempt: int
    client_token: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    spot: bool
    state: str
    hourly_price_micros: int
    launched_at: float
    ended_at: float | None
    tags: dict[str, str]
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> InstanceRecord:
        return cls(
            provider=row["provider"],
            instance_id=row["instance_id"],
            job_id=row["job_id"],
            attempt=row["attempt"],
            client_token=row["client_token"],
            cloud=row["cloud"],
            region=row["region"],
            zone=row["zone"],
            instance_type=row["instance_type"],
            spot=bool(row["spot"]),
            state=row["state"],
            hourly_price_micros=row["hourly_price_micros"],
            launched_at=row["launched_at"],
            ended_at=row["ended_at"],
            tags=json.loads(row["tags_json"]),
            data=json.loads(row["data_json"]),
        )

"""Interactive clusters in the store: each change commits together with the event explaining it."""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skyd.errors import ConflictError, NotFoundError
from skyd.model import TERMINAL_STATES, Instance
from skyd.store.db import Store
from skyd.store.instances import insert_instance, set_instance_state
from skyd.store.jobs import append_event, insert_job_in
from skyd.store.records import EventRecord, InstanceRecord, JobRecord
from skyd.store.sealing import seal_for


class ClusterState(enum.StrEnum):
    INIT = "INIT"  # being launched, booting, or starting again after a stop
    UP = "UP"
    STOPPED = "STOPPED"
    DOWN = "DOWN"  # torn down (or never came up); kept for history, its name is free again


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    id: int
    name: str
    owner_uid: int
    owner_name: str
    state: ClusterState
    provider: str
    spec_json: str
    placement: dict[str, Any] | None
    launch_token: str
    instance_ids: tuple[str, ...]
    autostop_minutes: int | None
    autostop_down: bool
    autostop_set_at: float | None
    idle_since: float | None
    created_at: float
    updated_at: float
    up_at: float | None
    ended_at: float | None
    reason: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ClusterRecord:
        placement = row["placement_json"]
        return cls(
            id=row["id"],
            name=row["name"],
            owner_uid=row["owner_uid"],
            owner_name=row["owner_name"],
            state=ClusterState(row["state"]),
            provider=row["provider"],
            spec_json=row["spec_json"],
            placement=json.loads(placement) if placement else None,
            launch_token=row["launch_token"],
            instance_ids=tuple(json.loads(row["instance_ids_json"])),
            autostop_minutes=row["autostop_minutes"],
            autostop_down=bool(row["autostop_down"]),
            autostop_set_at=row["autostop_set_at"],
            idle_since=row["idle_since"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            up_at=row["up_at"],
            ended_at=row["ended_at"],
            reason=row["reason"],
        )


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a job bound to a cluster is made of (the scheduler's columns, minus placement)."""

    name: str
    owner_uid: int
    owner_name: str
    project: str | None
    priority: int
    spec_json: str
    base_dir: str


def _cluster_data(
    cluster_id: int, name: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"cluster": name, "cluster_id": cluster_id, **(extra or {})}


def _read(conn: sqlite3.Connection, cluster_id: int) -> ClusterRecord:
    row = conn.execute("SELECT * FROM clusters WHERE id = ?", (cluster_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no cluster with id {cluster_id}")
    return ClusterRecord.from_row(row)


def _insert_bound_job(
    conn: sqlite3.Connection, cluster_id: int, cluster_name: str, job: NewJob, now: float
) -> tuple[JobRecord, EventRecord]:
    record, event = insert_job_in(
        conn,
        name=job.name,
        owner_uid=job.owner_uid,
        owner_name=job.owner_name,
        project=job.project,
        priority=job.priority,
        spec_json=job.spec_json,
        base_dir=job.base_dir,
        deadline=None,
        now=now,
        reason=f"submitted by {job.owner_name} to run on cluster {cluster_name}",
        data=_cluster_data(cluster_id, cluster_name),
    )
    conn.execute(
        "INSERT INTO cluster_jobs (job_id, cluster_id) VALUES (?, ?)", (record.id, cluster_id)
    )
    # a new job makes the cluster busy: the idle clock starts again when it ends
    conn.execute("UPDATE clusters SET idle_since = NULL WHERE id = ?", (cluster_id,))
    return record, event


def insert_cluster(
    store: Store,
    *,
    name: str,
    owner_uid: int,
    owner_name: str,
    spec_json: str,
    first_job: NewJob,
    autostop_minutes: int | None,
    autostop_down: bool,
    now: float,
    project: str | None = None,
) -> tuple[ClusterRecord, JobRecord, list[EventRecord]]:
    """A new cluster in INIT and its first job (PENDING, bound to it), in one transaction.
    `project` is what the cluster's instances are charged to (with its owner)."""
    with store.transaction() as conn:
        try:
            cur = conn.execute(
                "INSERT INTO clusters (name, owner_uid, owner_name, state, spec_json,"
                " autostop_minutes, autostop_down, autostop_set_at, created_at, updated_at,"
                " project) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    owner_uid,
                    owner_name,
                    ClusterState.INIT.value,
                    seal_for(conn, spec_json),
                    autostop_minutes,
                    int(autostop_down),
                    now if autostop_minutes is not None else None,
                    now,
                    now,
                    project,
                ),
            )
        except sqlite3.IntegrityError:
            raise ConflictError(
                f"a cluster named {name!r} already exists; pick another name, "
                f"or use `skyctl exec {name} …` to run on it"
            ) from None
        cluster_id = cur.lastrowid
        assert cluster_id is not None
        created = append_event(
            conn,
            job_id=None,
            at=now,
            kind="cluster_created",
            state=ClusterState.INIT.value,
            reason=f"cluster {name} requested by {owner_name}",
            data=_cluster_data(cluster_id, name),
        )
        job, submitted = _insert_bound_job(conn, cluster_id, name, first_job, now)
        cluster = _read(conn, cluster_id)
    return cluster, job, [created, submitted]


def insert_cluster_job(
    store: Store, cluster_id: int, job: NewJob, *, now: float
) -> tuple[JobRecord, EventRecord]:
    """A job that runs on an existing cluster (`skyctl exec`)."""
    with store.transaction() as conn:
        cluster = _read(conn, cluster_id)
        return _insert_bound_job(conn, cluster_id, cluster.name, job, now)


def record_plan(
    store: Store,
    cluster_id: int,
    *,
    provider: str,
    placement: dict[str, Any],
    launch_token: str,
    now: float,
    reason: str,
) -> tuple[ClusterRecord, EventRecord]:
    """Where the cluster is about to be launched, written before the provider is called so a
    restart mid-launch knows the token to look for."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE clusters SET provider = ?, placement_json = ?, launch_token = ?,"
            " updated_at = ? WHERE id = ?",
            (provider, json.dumps(placement, sort_keys=True), launch_token, now, cluster_id),
        )
        cluster = _read(conn, cluster_id)
        event = append_event(
            conn,
            job_id=None,
            at=now,
            kind="cluster_placed",
            state=cluster.state.value,
            reason=reason,
            data=_cluster_data(cluster_id, cluster.name, {"placement": placement}),
        )
    return cluster, event


def record_launched(
    store: Store,
    cluster_id: int,
    instances: Sequence[Instance],
    *,
    hourly_price_micros: int,
    launch_token: str,
    up: bool,
    now: float,
) -> tuple[ClusterRecord, EventRecord]:
    """The instances a launch made (no job: they belong to the cluster), and UP if they run."""
    ids = [i.instance_id for i in instances]
    state = ClusterState.UP if up else ClusterState.INIT
    with store.transaction() as conn:
        owner = _read(conn, cluster_id)
        # no job to join for who pays: the instance says whose cluster it serves
        data = {"cluster": owner.name, "cluster_id": cluster_id, "owner_uid": owner.owner_uid}
        for inst in instances:
            insert_instance(
                conn,
                inst,
                job_id=None,
                attempt=0,
                client_token=launch_token,
                hourly_price_micros=hourly_price_micros,
                now=now,
                data=data,
            )
        conn.execute(
            "UPDATE clusters SET instance_ids_json = ?, state = ?, updated_at = ?,"
            " up_at = CASE WHEN ? THEN ? ELSE up_at END WHERE id = ?",
            (json.dumps(ids), state.value, now, int(up), now, cluster_id),
        )
        cluster = _read(conn, cluster_id)
        names = ", ".join(ids)
        event = append_event(
            conn,
            job_id=None,
            at=now,
            kind="cluster_launched",
            state=state.value,
            reason=f"launched {names}" + ("" if up else "; waiting for it to boot"),
            data=_cluster_data(cluster_id, cluster.name, {"instances": ids}),
        )
    return cluster, event


def set_cluster_state(
    store: Store,
    cluster_id: int,
    state: ClusterState,
    *,
    now: float,
    kind: str,
    reason: str,
    instance_state: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[ClusterRecord, EventRecord]:
    """Move a cluster (and, with `instance_state`, its instances) to a new state, with its event."""
    with store.transaction() as conn:
        cluster = _read(conn, cluster_id)
        conn.execute(
            "UPDATE clusters SET state = ?, updated_at = ?, reason = ?, idle_since = NULL,"
            " up_at = CASE WHEN ? = 'UP' THEN ? ELSE up_at END,"
            " ended_at = CASE WHEN ? = 'DOWN' THEN ? ELSE ended_at END WHERE id = ?",
            (state.value, now, reason, state.value, now, state.value, now, cluster_id),
        )
        if instance_state is not None and cluster.provider:
            for iid in cluster.instance_ids:
                set_instance_state(conn, cluster.provider, iid, instance_state, now=now)
        event = append_event(
            conn,
            job_id=None,
            at=now,
            kind=kind,
            state=state.value,
            reason=reason,
            data=_cluster_data(cluster_id, cluster.name, data),
        )
        updated = _read(conn, cluster_id)
    return updated, event


def set_autostop(
    store: Store,
    cluster_id: int,
    *,
    minutes: int | None,
    down: bool,
    by_name: str,
    now: float,
) -> tuple[ClusterRecord, EventRecord]:
    """Set (or with `minutes` None, cancel) autostop; setting it restarts the idle clock."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE clusters SET autostop_minutes = ?, autostop_down = ?, autostop_set_at = ?,"
            " idle_since = NULL, updated_at = ? WHERE id = ?",
            (minutes, int(down and minutes is not None), now, now, cluster_id),
        )
        cluster = _read(conn, cluster_id)
        if minutes is None:
            reason = f"autostop cancelled by {by_name}"
        else:
            action = "tear down" if down else "stop"
            reason = f"autostop set by {by_name}: {action} after {minutes} idle minutes"
        event = append_event(
            conn,
            job_id=None,
            at=now,
            kind="autostop_set",
            state=cluster.state.value,
            reason=reason,
            data=_cluster_data(cluster_id, cluster.name, {"minutes": minutes, "down": down}),
        )
    return cluster, event


def set_idle_since(store: Store, cluster_id: int, idle_since: float | None) -> None:
    """Bookkeeping for autostop (not a state change, so no event)."""
    with store.transaction() as conn:
        conn.execute("UPDATE clusters SET idle_since = ? WHERE id = ?", (idle_since, cluster_id))


def get_cluster(store: Store, name: str) -> ClusterRecord:
    """The cluster that currently has `name` (torn-down ones are history, not found)."""
    row = store.conn.execute(
        "SELECT * FROM clusters WHERE name = ? AND state != 'DOWN'", (name,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no cluster named {name!r}; `skyctl clusters` lists them")
    return ClusterRecord.from_row(row)


def get_cluster_by_id(store: Store, cluster_id: int) -> ClusterRecord:
    return _read(store.conn, cluster_id)


def list_clusters(
    store: Store, *, states: Sequence[ClusterState] | None = None, include_down: bool = False
) -> list[ClusterRecord]:
    clauses: list[str] = []
    params: list[Any] = []
    if states:
        clauses.append(f"state IN ({', '.join('?' for _ in states)})")
        params.extend(s.value for s in states)
    elif not include_down:
        clauses.append("state != 'DOWN'")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.conn.execute(f"SELECT * FROM clusters{where} ORDER BY id", params).fetchall()
    return [ClusterRecord.from_row(r) for r in rows]


def cluster_instances(store: Store, cluster: ClusterRecord) -> list[InstanceRecord]:
    if not cluster.instance_ids:
        return []
    marks = ", ".join("?" for _ in cluster.instance_ids)
    rows = store.conn.execute(
        f"SELECT * FROM instances WHERE provider = ? AND instance_id IN ({marks})"
        " ORDER BY instance_id",
        (cluster.provider, *cluster.instance_ids),
    ).fetchall()
    return [InstanceRecord.from_row(r) for r in rows]


def cluster_jobs(store: Store, cluster_id: int, *, active_only: bool = False) -> list[JobRecord]:
    sql = (
        "SELECT jobs.* FROM jobs JOIN cluster_jobs ON cluster_jobs.job_id = jobs.id"
        " WHERE cluster_jobs.cluster_id = ?"
    )
    params: list[Any] = [cluster_id]
    if active_only:
        terminal = [s.value for s in TERMINAL_STATES]
        sql += f" AND jobs.state NOT IN ({', '.join('?' for _ in terminal)})"
        params.extend(terminal)
    rows = store.conn.execute(sql + " ORDER BY jobs.id", params).fetchall()
    return [JobRecord.from_row(r) for r in rows]


def last_job_end(store: Store, cluster_id: int) -> float | None:
    row = store.conn.execute(
        "SELECT MAX(jobs.ended_at) FROM jobs JOIN cluster_jobs ON cluster_jobs.job_id = jobs.id"
        " WHERE cluster_jobs.cluster_id = ?",
        (cluster_id,),
    ).fetchone()
    value = row[0] if row is not None else None
    return float(value) if value is not None else None


def cluster_id_of_job(store: Store, job_id: int) -> int | None:
    row = store.conn.execute(
        "SELECT cluster_id FROM cluster_jobs WHERE job_id = ?", (job_id,)
    ).fetchone()
    return int(row[0]) if row is not None else None


def cluster_events(store: Store, cluster_id: int) -> list[EventRecord]:
    """The cluster's own events (launch, stop, start, autostop …), oldest first."""
    rows = store.conn.execute(
        "SELECT * FROM events WHERE job_id IS NULL"
        " AND json_extract(data_json, '$.cluster_id') = ? ORDER BY seq",
        (cluster_id,),
    ).fetchall()
    return [EventRecord.from_row(r) for r in rows]


def append_cluster_event(
    store: Store, cluster: ClusterRecord, *, now: float, kind: str, reason: str
) -> EventRecord:
    """An event about a cluster that changes nothing else (e.g. an autostop that failed)."""
    with store.transaction() as conn:
        return append_event(
            conn,
            job_id=None,
            at=now,
            kind=kind,
            state=cluster.state.value,
            reason=reason,
            data=_cluster_data(cluster.id, cluster.name),
        )

"""Instances skyd launched: recorded before and after launch so none is ever lost track of."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from skyd.model import Instance
from skyd.store.db import Store
from skyd.store.records import InstanceRecord

ACTIVE_INSTANCE_STATES = ("PENDING", "RUNNING", "STOPPING", "STOPPED")
# skyd decided to give the instance back and may not have heard the cloud confirm it yet: the
# intent is written before the terminate call (with the job's outcome), so a daemon killed in
# between finishes the termination after a restart instead of reading the end as a loss
TERMINATING = "TERMINATING"
ENDS_AS = "ends_as"  # data key: the final state (TERMINATED or PREEMPTED) once it is gone


def insert_instance(
    conn: sqlite3.Connection,
    instance: Instance,
    *,
    job_id: int | None,
    attempt: int,
    client_token: str,
    hourly_price_micros: int,
    now: float,
    data: dict[str, Any] | None = None,
) -> None:
    """Record a launched instance inside the caller's transaction (idempotent per id)."""
    conn.execute(
        "INSERT INTO instances (provider, instance_id, job_id, attempt, client_token, cloud,"
        " region, zone, instance_type, spot, state, hourly_price_micros, launched_at, tags_json,"
        " data_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (provider, instance_id) DO UPDATE SET state = excluded.state,"
        # merged, so a repeated insert keeps what was learnt since (the pinned host key)
        " data_json = json_patch(instances.data_json, excluded.data_json)",
        (
            instance.provider,
            instance.instance_id,
            job_id,
            attempt,
            client_token,
            instance.cloud,
            instance.region,
            instance.zone,
            instance.instance_type,
            int(instance.spot),
            instance.state.value,
            hourly_price_micros,
            now,
            json.dumps(instance.tags, sort_keys=True),
            json.dumps(data or {}, sort_keys=True),
        ),
    )


def set_instance_state(
    conn: sqlite3.Connection, provider: str, instance_id: str, state: str, *, now: float
) -> None:
    ended = now if state in ("TERMINATED", "PREEMPTED") else None
    conn.execute(
        "UPDATE instances SET state = ?, ended_at = COALESCE(ended_at, ?)"
        " WHERE provider = ? AND instance_id = ?",
        (state, ended, provider, instance_id),
    )


def mark_terminating(conn: sqlite3.Connection, provider: str, instance_id: str, final: str) -> None:
    """Record, inside the caller's transaction, that skyd is giving the instance back and
    which final state it ends in (only an instance still held: an end already recorded
    stays). A row written already PREEMPTED or TERMINATED by the launch that found it
    so has no end recorded yet (no `ended_at`): it is given back too, since the cloud may
    still hold it (a preempted GCE VM stays, stopped, until deleted; a sim record stays)."""
    marks = ", ".join("?" for _ in ACTIVE_INSTANCE_STATES)
    conn.execute(
        "UPDATE instances SET state = ?, data_json = json_set(data_json, ?, ?)"
        f" WHERE provider = ? AND instance_id = ? AND (state IN ({marks})"
        " OR (state IN (?, ?) AND ended_at IS NULL))",
        (
            TERMINATING,
            f"$.{ENDS_AS}",
            final,
            provider,
            instance_id,
            *ACTIVE_INSTANCE_STATES,
            "PREEMPTED",
            "TERMINATED",
        ),
    )


def set_instance_data(
    conn: sqlite3.Connection, provider: str, instance_id: str, key: str, value: Any
) -> None:
    """Set one key of an instance's data (e.g. the SSH host key pinned on first contact)."""
    conn.execute(
        "UPDATE instances SET data_json = json_set(data_json, ?, json(?))"
        " WHERE provider = ? AND instance_id = ?",
        (f"$.{key}", json.dumps(value), provider, instance_id),
    )


def active_instances(store: Store, provider: str | None = None) -> list[InstanceRecord]:
    marks = ", ".join("?" for _ in ACTIVE_INSTANCE_STATES)
    sql = f"SELECT * FROM instances WHERE state IN ({marks})"
    params: list[Any] = list(ACTIVE_INSTANCE_STATES)
    if provider is not None:
        sql += " AND provider = ?"
        params.append(provider)
    return [InstanceRecord.from_row(r) for r in store.conn.execute(sql, params).fetchall()]


def terminating_instances(store: Store, provider: str | None = None) -> list[InstanceRecord]:
    """Instances skyd is giving back whose end is not recorded yet."""
    sql = "SELECT * FROM instances WHERE state = ?"
    params: list[Any] = [TERMINATING]
    if provider is not None:
        sql += " AND provider = ?"
        params.append(provider)
    return [InstanceRecord.from_row(r) for r in store.conn.execute(sql, params).fetchall()]


def instances_for_job(store: Store, job_id: int) -> list[InstanceRecord]:
    rows = store.conn.execute(
        "SELECT * FROM instances WHERE job_id = ? ORDER BY launched_at", (job_id,)
    ).fetchall()
    return [InstanceRecord.from_row(r) for r in rows]

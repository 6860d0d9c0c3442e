"""Jobs and their append-only event history: every state change commits with its event."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from skyd.errors import NotFoundError
from skyd.lifecycle import check_transition
from skyd.model import TERMINAL_STATES, JobState
from skyd.store.db import Store
from skyd.store.records import EventRecord, JobRecord
from skyd.store.sealing import seal_for

# Columns a transition may set alongside the state.
_UPDATABLE = frozenset(
    {
        "started_at",
        "ended_at",
        "exit_code",
        "reason",
        "placement_json",
        "attempt",
        "preemptions",
        "restarts",
        "cost_micros",
    }
)


def append_event(
    conn: sqlite3.Connection,
    *,
    job_id: int | None,
    at: float,
    kind: str,
    reason: str = "",
    state: str | None = None,
    data: dict[str, Any] | None = None,
) -> EventRecord:
    """Append one event inside the caller's transaction."""
    data_json = json.dumps(data or {}, separators=(",", ":"), sort_keys=True)
    cur = conn.execute(
        "INSERT INTO events (job_id, at, kind, state, reason, data_json) VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, at, kind, state, reason, data_json),
    )
    seq = cur.lastrowid
    assert seq is not None
    return EventRecord(seq, job_id, at, kind, state, reason, data or {})


def insert_jobs(
    store: Store, new_jobs: Sequence[dict[str, Any]]
) -> list[tuple[JobRecord, EventRecord]]:
    """Store several submitted jobs (each with its "submitted" event) in one transaction."""
    with store.transaction() as conn:
        return [insert_job_in(conn, **new_job) for new_job in new_jobs]


def insert_job(
    store: Store,
    *,
    name: str,
    owner_uid: int,
    owner_name: str,
    project: str | None,
    priority: int,
    spec_json: str,
    base_dir: str,
    deadline: float | None,
    now: float,
) -> tuple[JobRecord, EventRecord]:
    with store.transaction() as conn:
        return insert_job_in(
            conn,
            name=name,
            owner_uid=owner_uid,
            owner_name=owner_name,
            project=project,
            priority=priority,
            spec_json=spec_json,
            base_dir=base_dir,
            deadline=deadline,
            now=now,
        )


def insert_job_in(
    conn: sqlite3.Connection,
    *,
    name: str,
    owner_uid: int,
    owner_name: str,
    project: str | None,
    priority: int,
    spec_json: str,
    base_dir: str,
    deadline: float | None,
    now: float,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[JobRecord, EventRecord]:
    """Store one submitted job and its "submitted" event inside the caller's transaction."""
    spec_json = seal_for(conn, spec_json)  # env values encrypted at rest
    cur = conn.execute(
        "INSERT INTO jobs (name, owner_uid, owner_name, project, priority, state, spec_json,"
        " base_dir, created_at, updated_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            name,
            owner_uid,
            owner_name,
            project,
            priority,
            JobState.PENDING.value,
            spec_json,
            base_dir,
            now,
            now,
            deadline,
        ),
    )
    job_id = cur.lastrowid
    assert job_id is not None
    event = append_event(
        conn,
        job_id=job_id,
        at=now,
        kind="submitted",
        state=JobState.PENDING.value,
        reason=reason or f"submitted by {owner_name}",
        data=data,
    )
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return JobRecord.from_row(row), event


def get_job(store: Store, job_id: int) -> JobRecord:
    row = store.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no job with id {job_id}")
    return JobRecord.from_row(row)


def transition(
    store: Store,
    job_id: int,
    target: JobState,
    *,
    now: float,
    reason: str,
    kind: str = "state",
    data: dict[str, Any] | None = None,
    also: Callable[[sqlite3.Connection], None] | None = None,
    **columns: Any,
) -> tuple[JobRecord, EventRecord]:
    """Move a job to `target` and record why, atomically. Illegal moves raise and change nothing.

    `also` runs inside the same transaction (e.g. recording the instances a launch made)."""
    bad = set(columns) - _UPDATABLE
    if bad:
        raise ValueError(f"transition cannot set {sorted(bad)}")
    with store.transaction() as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no job with id {job_id}")
        current = JobState(row["state"])
        check_transition(job_id, current, target)
        columns.setdefault("reason", reason)
        if target in TERMINAL_STATES and "ended_at" not in columns:
            columns["ended_at"] = now
        assignments = ", ".join(f"{col} = ?" for col in columns)
        sql = "UPDATE jobs SET state = ?, updated_at = ?" + (f", {assignments}" if columns else "")
        conn.execute(sql + " WHERE id = ?", (target.value, now, *columns.values(), job_id))
        event = append_event(
            conn, job_id=job_id, at=now, kind=kind, state=target.value, reason=reason, data=data
        )
        if also is not None:
            also(conn)
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return JobRecord.from_row(row), event


def record_event(
    store: Store,
    job_id: int | None,
    *,
    now: float,
    kind: str,
    reason: str,
    data: dict[str, Any] | None = None,
) -> EventRecord:
    with store.transaction() as conn:
        return append_event(conn, job_id=job_id, at=now, kind=kind, reason=reason, data=data)


def update_job_fields(store: Store, job_id: int, **columns: Any) -> None:
    """Change bookkeeping columns that are not a state change (e.g. the current placement)."""
    bad = set(columns) - _UPDATABLE
    if bad:
        raise ValueError(f"cannot set {sorted(bad)}")
    assignments = ", ".join(f"{col} = ?" for col in columns)
    with store.transaction() as conn:
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*columns.values(), job_id))


def request_cancel(
    store: Store, job_ids: Sequence[int], *, by: str, now: float
) -> list[EventRecord]:
    """Record that each unfinished job of `job_ids` is to be cancelled (a "cancel_requested"
    event each), in one commit, before anything is killed: a restart finishes what is stored.
    A job already ended, or whose cancel was already asked, is left as it is."""
    events: list[EventRecord] = []
    with store.transaction() as conn:
        for job_id in job_ids:
            cur = conn.execute(
                "UPDATE jobs SET cancel_requested_at = ?, cancel_requested_by = ?, updated_at = ?"
                f" WHERE id = ? AND cancel_requested_at IS NULL AND {ACTIVE_CLAUSE}",
                (now, by, now, job_id),
            )
            if cur.rowcount:
                events.append(
                    append_event(
                        conn,
                        job_id=job_id,
                        at=now,
                        kind="cancel_requested",
                        reason=f"cancel requested by {by}; stopping the job",
                        data={"by": by},
                    )
                )
    return events


def cancelling_jobs(store: Store) -> list[JobRecord]:
    """Unfinished jobs whose cancel was asked (migrations/0013: a partial index holds them)."""
    rows = store.conn.execute(
        f"SELECT * FROM jobs WHERE cancel_requested_at IS NOT NULL AND {ACTIVE_CLAUSE} ORDER BY id"
    ).fetchall()
    return [JobRecord.from_row(r) for r in rows]


# Exactly the terms of the partial indexes in migrations/0007_active_jobs_index.sql.
ACTIVE_CLAUSE = "state NOT IN ('SUCCEEDED', 'FAILED', 'FAILED_SETUP', 'CANCELLED')"
ACTIVE_STATES = frozenset(s for s in JobState if s not in TERMINAL_STATES)


def list_jobs(
    store: Store,
    *,
    states: Sequence[JobState] | None = None,
    owner_uid: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[JobRecord]:
    """Newest first, keyset-paginated by id so a page costs the same at any depth."""
    clauses: list[str] = []
    params: list[Any] = []
    if states and frozenset(states) == ACTIVE_STATES:
        clauses.append(ACTIVE_CLAUSE)  # served by the partial indexes of unfinished jobs
    elif states:
        clauses.append(f"state IN ({', '.join('?' for _ in states)})")
        params.extend(s.value for s in states)
    if owner_uid is not None:
        clauses.append("owner_uid = ?")
        params.append(owner_uid)
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.conn.execute(
        f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT ?", (*params, limit)
    ).fetchall()
    return [JobRecord.from_row(r) for r in rows]


def jobs_in_states(
    store: Store,
    states: Sequence[JobState],
    limit: int | None = None,
    after_id: int | None = None,
) -> list[JobRecord]:
    """Jobs in `states` (newer than `after_id`), in scheduling order (priority, then age)."""
    if limit is not None and len(states) > 1:
        # one index range per state, merged here: with `state IN (…)` SQLite sorts every
        # matching row (100,000 waiting jobs) to return the first few
        newer = "" if after_id is None else " AND id > ?"
        extra = [] if after_id is None else [after_id]
        return _first_in_order(store, [(state, newer, extra) for state in states], limit)
    marks = ", ".join("?" for _ in states)
    params: list[Any] = [s.value for s in states]
    newer = ""
    if after_id is not None:
        newer = " AND id > ?"
        params.append(after_id)
    sql = f"SELECT * FROM jobs WHERE state IN ({marks}){newer} ORDER BY priority DESC, id ASC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [JobRecord.from_row(r) for r in store.conn.execute(sql, params).fetchall()]


def jobs_in_states_after(
    store: Store,
    states: Sequence[JobState],
    *,
    after: tuple[int, int],
    limit: int,
) -> list[JobRecord]:
    """Jobs in `states` that come after (priority, id) `after` in scheduling order."""
    priority, job_id = after
    # per state, two index ranges (the rest of this priority, then lower priorities): each
    # reads at most `limit` rows, where one query over both would sort the whole queue
    ranges: list[tuple[JobState, str, list[Any]]] = []
    for state in states:
        ranges.append((state, " AND priority = ? AND id > ?", [priority, job_id]))
        ranges.append((state, " AND priority < ?", [priority]))
    return _first_in_order(store, ranges, limit)


def _first_in_order(
    store: Store, ranges: Sequence[tuple[JobState, str, list[Any]]], limit: int
) -> list[JobRecord]:
    """The first `limit` jobs in scheduling order over several single-state index ranges
    (jobs_queue_order: state, priority DESC, id)."""
    rows: list[Any] = []
    for state, where, params in ranges:
        rows += store.conn.execute(
            f"SELECT * FROM jobs WHERE state = ?{where} ORDER BY priority DESC, id ASC LIMIT ?",
            [state.value, *params, limit],
        ).fetchall()
    rows.sort(key=lambda r: (-r["priority"], r["id"]))
    return [JobRecord.from_row(r) for r in rows[:limit]]


def waiting_jobs_page(store: Store, *, after_id: int, limit: int) -> list[JobRecord]:
    """PENDING and RECOVERING jobs with id > `after_id`, oldest first (keyset pages)."""
    rows = store.conn.execute(
        "SELECT * FROM jobs WHERE state IN (?, ?) AND id > ? ORDER BY id LIMIT ?",
        (JobState.PENDING.value, JobState.RECOVERING.value, after_id, limit),
    ).fetchall()
    return [JobRecord.from_row(r) for r in rows]


def job_events(store: Store, job_id: int) -> list[EventRecord]:
    rows = store.conn.execute(
        "SELECT * FROM events WHERE job_id = ? ORDER BY seq", (job_id,)
    ).fetchall()
    return [EventRecord.from_row(r) for r in rows]


def events_since(store: Store, seq: int, limit: int = 1000) -> list[EventRecord]:
    rows = store.conn.execute(
        "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    ).fetchall()
    return [EventRecord.from_row(r) for r in rows]

"""Credit pools, projects, per-user limits and budget overrides; every change is audited."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from skyd.accounting.records import CreditPool, Project, UserLimit
from skyd.errors import ConflictError, NotFoundError
from skyd.model import TERMINAL_STATES, JobState
from skyd.store.db import Store


def _audit(
    conn: sqlite3.Connection, *, at: float, by_uid: int, kind: str, subject: str, data: Any
) -> None:
    conn.execute(
        "INSERT INTO accounting_changes (at, by_uid, kind, subject, data_json)"
        " VALUES (?, ?, ?, ?, ?)",
        (at, by_uid, kind, subject, json.dumps(data, sort_keys=True)),
    )


def _pool(row: sqlite3.Row) -> CreditPool:
    return CreditPool(
        id=row["id"],
        name=row["name"],
        cloud=row["cloud"],
        account=row["account"],
        region=row["region"],
        amount_micros=row["amount_micros"],
        spent_micros=row["spent_micros"],
        starts_at=row["starts_at"],
        expires_at=row["expires_at"],
        retired_at=row["retired_at"],
        created_at=row["created_at"],
        projects=_scope(row["projects_json"]),
        users=_scope(row["users_json"]),
    )


def _scope(text: str | None) -> tuple[Any, ...] | None:
    return None if text is None else tuple(json.loads(text))


def scope_json(values: Sequence[Any] | None) -> str | None:
    """A pool's scope column: NULL for "anyone", else the sorted list as JSON."""
    return None if values is None else json.dumps(sorted(set(values)))


# -- credit pools --------------------------------------------------------------------------


def add_pool(
    store: Store,
    *,
    name: str,
    cloud: str,
    amount_micros: int,
    starts_at: float,
    expires_at: float,
    account: str | None,
    region: str | None,
    by_uid: int,
    now: float,
    projects: Sequence[str] | None = None,
    users: Sequence[int] | None = None,
) -> CreditPool:
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM credit_pools WHERE name = ?", (name,)).fetchone():
            raise ConflictError(f"a credit pool named {name!r} exists; top it up or pick a name")
        cur = conn.execute(
            "INSERT INTO credit_pools (name, cloud, account, region, amount_micros, starts_at,"
            " expires_at, created_at, created_by, projects_json, users_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                cloud,
                account,
                region,
                amount_micros,
                starts_at,
                expires_at,
                now,
                by_uid,
                scope_json(projects),
                scope_json(users),
            ),
        )
        pool_id = cur.lastrowid
        assert pool_id is not None
        _audit(
            conn,
            at=now,
            by_uid=by_uid,
            kind="pool_added",
            subject=name,
            data={
                "cloud": cloud,
                "amount_micros": amount_micros,
                "expires_at": expires_at,
                "projects": projects,
                "users": users,
            },
        )
    return get_pool(store, str(pool_id))


def get_pool(store: Store, ref: str) -> CreditPool:
    """A pool by id (all digits) or name."""
    if ref.isdigit():
        row = store.conn.execute("SELECT * FROM credit_pools WHERE id = ?", (int(ref),)).fetchone()
    else:
        row = store.conn.execute("SELECT * FROM credit_pools WHERE name = ?", (ref,)).fetchone()
    if row is None:
        raise NotFoundError(f"no credit pool {ref!r}; `skyctl credits` lists them")
    return _pool(row)


def list_pools(conn: sqlite3.Connection) -> list[CreditPool]:
    rows = conn.execute("SELECT * FROM credit_pools ORDER BY expires_at, id").fetchall()
    return [_pool(r) for r in rows]


def update_pool(
    store: Store,
    pool_id: int,
    changes: dict[str, Any],
    *,
    kind: str,
    by_uid: int,
    now: float,
) -> CreditPool:
    """Set columns of a pool (amount_micros, expires_at, starts_at, retired_at, region, account)."""
    allowed = {
        "amount_micros",
        "expires_at",
        "starts_at",
        "retired_at",
        "region",
        "account",
        "projects_json",
        "users_json",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"update_pool: cannot set {sorted(unknown)}")
    with store.transaction() as conn:
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in sorted(changes))
            conn.execute(
                f"UPDATE credit_pools SET {assignments} WHERE id = ?",
                [*(changes[c] for c in sorted(changes)), pool_id],
            )
        _audit(conn, at=now, by_uid=by_uid, kind=kind, subject=str(pool_id), data=changes)
    return get_pool(store, str(pool_id))


def top_up_pool(
    store: Store, pool_id: int, amount_micros: int, *, by_uid: int, now: float
) -> CreditPool:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE credit_pools SET amount_micros = amount_micros + ? WHERE id = ?",
            (amount_micros, pool_id),
        )
        _audit(
            conn,
            at=now,
            by_uid=by_uid,
            kind="pool_topped_up",
            subject=str(pool_id),
            data={"amount_micros": amount_micros},
        )
    return get_pool(store, str(pool_id))


# -- projects and limits -------------------------------------------------------------------


def get_project(conn: sqlite3.Connection, name: str) -> Project | None:
    row = conn.execute(
        "SELECT name, monthly_budget_micros FROM projects WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    members = conn.execute(
        "SELECT uid FROM project_members WHERE project = ? ORDER BY uid", (name,)
    ).fetchall()
    return Project(row[0], row[1], tuple(m[0] for m in members))


def list_projects(conn: sqlite3.Connection) -> list[Project]:
    names = [r[0] for r in conn.execute("SELECT name FROM projects ORDER BY name").fetchall()]
    return [p for p in (get_project(conn, n) for n in names) if p is not None]


def put_project(
    store: Store,
    *,
    name: str,
    monthly_budget_micros: int | None,
    members: Sequence[int] | None,
    by_uid: int,
    now: float,
) -> Project:
    """Create or change a project; `members` None keeps the current members."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO projects (name, monthly_budget_micros, created_at, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
            " monthly_budget_micros = excluded.monthly_budget_micros,"
            " updated_at = excluded.updated_at",
            (name, monthly_budget_micros, now, now),
        )
        if members is not None:
            conn.execute("DELETE FROM project_members WHERE project = ?", (name,))
            conn.executemany(
                "INSERT INTO project_members (project, uid) VALUES (?, ?)",
                [(name, uid) for uid in sorted(set(members))],
            )
        _audit(
            conn,
            at=now,
            by_uid=by_uid,
            kind="project_set",
            subject=name,
            data={"monthly_budget_micros": monthly_budget_micros, "members": members},
        )
        project = get_project(conn, name)
    assert project is not None
    return project


_LIMIT_COLUMNS = "SELECT uid, max_gpus, max_hourly_micros, monthly_budget_micros FROM user_limits"


def get_user_limit(conn: sqlite3.Connection, uid: int) -> UserLimit | None:
    row = conn.execute(_LIMIT_COLUMNS + " WHERE uid = ?", (uid,)).fetchone()
    return None if row is None else UserLimit(row[0], row[1], row[2], row[3])


def any_budget_or_limit(conn: sqlite3.Connection) -> bool:
    """Whether any project, user or lab budget, or any user limit, is set: else nothing holds
    a job for money."""
    return (
        conn.execute("SELECT 1 FROM user_limits LIMIT 1").fetchone() is not None
        or conn.execute(
            "SELECT 1 FROM projects WHERE monthly_budget_micros IS NOT NULL LIMIT 1"
        ).fetchone()
        is not None
        or get_lab_budget(conn) is not None
    )


def has_user_limits(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM user_limits LIMIT 1").fetchone() is not None


def list_user_limits(conn: sqlite3.Connection) -> list[UserLimit]:
    rows = conn.execute(_LIMIT_COLUMNS + " ORDER BY uid").fetchall()
    return [UserLimit(r[0], r[1], r[2], r[3]) for r in rows]


def put_user_limit(
    store: Store,
    uid: int,
    *,
    max_gpus: int | None,
    max_hourly_micros: int | None,
    by_uid: int,
    now: float,
    monthly_budget_micros: int | None = None,
) -> UserLimit:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO user_limits (uid, max_gpus, max_hourly_micros, monthly_budget_micros,"
            " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (uid) DO UPDATE SET"
            " max_gpus = excluded.max_gpus, max_hourly_micros = excluded.max_hourly_micros,"
            " monthly_budget_micros = excluded.monthly_budget_micros,"
            " updated_at = excluded.updated_at",
            (uid, max_gpus, max_hourly_micros, monthly_budget_micros, now),
        )
        _audit(
            conn,
            at=now,
            by_uid=by_uid,
            kind="user_limit_set",
            subject=str(uid),
            data={
                "max_gpus": max_gpus,
                "max_hourly_micros": max_hourly_micros,
                "monthly_budget_micros": monthly_budget_micros,
            },
        )
    return UserLimit(uid, max_gpus, max_hourly_micros, monthly_budget_micros)


def get_lab_budget(conn: sqlite3.Connection) -> int | None:
    """The lab-wide monthly budget in micro-dollars (None = none)."""
    row = conn.execute("SELECT monthly_budget_micros FROM lab_budget WHERE id = 1").fetchone()
    return None if row is None else row[0]


def put_lab_budget(store: Store, budget_micros: int | None, *, by_uid: int, now: float) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO lab_budget (id, monthly_budget_micros, updated_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET monthly_budget_micros ="
            " excluded.monthly_budget_micros, updated_at = excluded.updated_at",
            (budget_micros, now),
        )
        _audit(
            conn,
            at=now,
            by_uid=by_uid,
            kind="lab_budget_set",
            subject="lab",
            data={"monthly_budget_micros": budget_micros},
        )


def ensure_project(store: Store, name: str, *, now: float) -> None:
    """Create `name` with no budget and open membership unless it exists (the default project)."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO projects (name, monthly_budget_micros, created_at, updated_at)"
            " VALUES (?, NULL, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, now, now),
        )


def announce_alert(
    conn: sqlite3.Connection, scope: str, month: float, line: int, at: float
) -> bool:
    """Record that `scope` crossed `line` (per mille) in the month starting `month`; False if
    that was announced already."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO budget_alerts (scope, month_start, line_permille, at)"
        " VALUES (?, ?, ?, ?)",
        (scope, month, line, at),
    )
    return cur.rowcount == 1


# -- overrides and what is in use ------------------------------------------------------------


def add_override(store: Store, job_id: int, *, by_uid: int, note: str, now: float) -> None:
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
            raise NotFoundError(f"no job {job_id}")
        conn.execute(
            "INSERT INTO budget_overrides (job_id, by_uid, at, note) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id) DO NOTHING",
            (job_id, by_uid, now, note),
        )
        _audit(conn, at=now, by_uid=by_uid, kind="budget_override", subject=str(job_id), data={})


def overridden_jobs(conn: sqlite3.Connection) -> set[int]:
    return {r[0] for r in conn.execute("SELECT job_id FROM budget_overrides").fetchall()}


def active_jobs(
    conn: sqlite3.Connection, states: Collection[JobState] | None = None
) -> list[sqlite3.Row]:
    """Non-terminal jobs (or only those in `states`) with what they hold: id, owner,
    project, state, placement, spec. Asking for the holding states skips the waiting
    queue, which may be long, through the state index."""
    if states is not None:
        marks = ", ".join("?" for _ in states)
        return conn.execute(
            "SELECT id, owner_uid, project, state, placement_json, spec_json FROM jobs"
            f" WHERE state IN ({marks}) ORDER BY id",
            [s.value for s in states],
        ).fetchall()
    marks = ", ".join("?" for _ in TERMINAL_STATES)
    return conn.execute(
        "SELECT id, owner_uid, project, state, placement_json, spec_json FROM jobs"
        f" WHERE state NOT IN ({marks}) ORDER BY id",
        [s.value for s in TERMINAL_STATES],
    ).fetchall()


def hourly_burn_by_job(conn: sqlite3.Connection) -> dict[int, int]:
    """The recorded hourly price of every running (not stopped) instance, summed per job."""
    rows = conn.execute(
        "SELECT job_id, SUM(hourly_price_micros) FROM instances"
        " WHERE job_id IS NOT NULL AND state IN ('PENDING', 'RUNNING', 'STOPPING')"
        " GROUP BY job_id"
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def hourly_burn_by_cluster(conn: sqlite3.Connection) -> dict[int, int]:
    """The recorded hourly price of every running instance of a cluster, summed per cluster."""
    rows = conn.execute(
        "SELECT json_extract(data_json, '$.cluster_id'), SUM(hourly_price_micros)"
        " FROM instances WHERE job_id IS NULL AND json_extract(data_json, '$.cluster_id')"
        " IS NOT NULL AND state IN ('PENDING', 'RUNNING', 'STOPPING') GROUP BY 1"
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def changes_log(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT seq, at, by_uid, kind, subject, data_json FROM accounting_changes"
        " ORDER BY seq DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "seq": r[0],
            "at": r[1],
            "by_uid": r[2],
            "kind": r[3],
            "subject": r[4],
            "data": json.loads(r[5]),
        }
        for r in rows
    ]

"""The ledger: append-only charges, per-instance accrual state and the daily cost roll-up.

One accrual pass is written by `record_charges` inside the caller's transaction: ledger rows,
every instance's watermark, carry and open stretch, pool spending, the roll-up and jobs'
posted cost. After a crash either all of a pass is there or none of it, so no second is
charged twice and none is lost. Totals (reports, budgets) are the roll-up of posted rows
plus the open stretches, which are exact to the micro-dollar at the last pass.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from skyd.accounting.accrual import MS_PER_DAY, Accrual, LedgerRow, to_ms
from skyd.accounting.records import ChargedInstance

_SECONDS_PER_DAY = 86_400

# Every charge, posted or open, as (day, job_id, cloud, pool_id, owner_uid, project, amount,
# transfer_micros, transfer_bytes) — the last two the data-transfer share of the amount;
# job 0 = no job, pool 0 = cash. Parameters: the first day, twice.
_ALL_CHARGES = (
    "SELECT day, job_id, cloud, pool_id, owner_uid, project, amount_micros,"
    " transfer_micros, transfer_bytes"
    " FROM cost_daily WHERE day >= ?"
    " UNION ALL"
    " SELECT w.open_start_ms / 86400000, COALESCE(w.job_id, 0), w.cloud,"
    " COALESCE(w.open_pool_id, 0), w.owner_uid, w.project, p.open_amount, 0, 0"
    " FROM accrual_watermarks AS w JOIN accrual_progress AS p ON p.id = w.id"
    " WHERE w.settled = 0 AND p.open_amount > 0 AND w.open_start_ms >= ? * 86400000"
)


_ACCRUAL_COLUMNS = (
    "SELECT w.id, p.accrued_ms, p.carry, w.open_start_ms, w.open_price, w.open_pool_id,"
    " w.open_stopped, p.open_amount,"
    " w.provider, w.instance_id, w.job_id, w.owner_uid, w.project, w.cloud, w.region,"
    " i.zone, i.instance_type, i.spot, i.state, i.hourly_price_micros, i.launched_at,"
    " i.ended_at, json_extract(i.data_json, '$.account'), w.settled, w.seen_stopped"
    " FROM accrual_watermarks AS w JOIN accrual_progress AS p ON p.id = w.id"
    " JOIN instances AS i ON i.provider = w.provider AND i.instance_id = w.instance_id"
)


def _accruals(rows: list[tuple[Any, ...]]) -> list[Accrual]:
    return [
        Accrual(
            r[0],
            ChargedInstance(
                r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16], bool(r[17]),
                r[18], r[19], r[20], r[21], r[22],
            ),
            r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], bool(r[24]), bool(r[23]),
        )
        for r in rows
    ]  # fmt: skip


def _plain(conn: sqlite3.Connection) -> sqlite3.Cursor:
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: these read many rows on every pass
    return cur


def open_accruals(conn: sqlite3.Connection) -> list[Accrual]:
    """Every instance not yet charged to its end, with its accrual state (after a start)."""
    start_new_accruals(conn)
    conn.execute("DELETE FROM accounting_dirty")
    return _accruals(_plain(conn).execute(_ACCRUAL_COLUMNS + " WHERE w.settled = 0").fetchall())


def changed_accruals(conn: sqlite3.Connection) -> list[Accrual]:
    """The accruals of instances launched or changed since the last pass; clears the queue."""
    if conn.execute("SELECT 1 FROM accounting_dirty LIMIT 1").fetchone() is None:
        return []
    start_new_accruals(conn)
    rows = (
        _plain(conn)
        .execute(
            _ACCRUAL_COLUMNS + " JOIN accounting_dirty AS d"
            " ON d.provider = w.provider AND d.instance_id = w.instance_id"
        )
        .fetchall()
    )
    conn.execute("DELETE FROM accounting_dirty")
    return _accruals(rows)


def start_new_accruals(conn: sqlite3.Connection) -> int:
    """Start accrual, at launch, for queued instances that have none yet."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO accrual_watermarks (provider, instance_id, job_id, owner_uid,"
        " project, cloud, region)"
        " SELECT i.provider, i.instance_id, i.job_id, COALESCE(j.owner_uid, c.owner_uid),"
        " COALESCE(j.project, c.project), i.cloud, i.region"
        " FROM accounting_dirty AS d"
        " JOIN instances AS i ON i.provider = d.provider AND i.instance_id = d.instance_id"
        " LEFT JOIN jobs AS j ON j.id = i.job_id"
        # a cluster's instances have no job: they charge the cluster's owner and project
        " LEFT JOIN clusters AS c"
        "   ON i.job_id IS NULL AND c.id = json_extract(i.data_json, '$.cluster_id')"
    )
    if cur.rowcount:
        # The start is rounded to ms by the same rule as every end (`to_ms`, Python's round):
        # SQLite's ROUND rounds half away from zero, Python's half to even, and a launch time
        # on a half millisecond then charged an instance 1 ms more or less than its life.
        starts = conn.execute(
            "SELECT w.id, i.launched_at FROM accounting_dirty AS d"
            " JOIN accrual_watermarks AS w"
            "   ON w.provider = d.provider AND w.instance_id = d.instance_id"
            " JOIN instances AS i ON i.provider = d.provider AND i.instance_id = d.instance_id"
        ).fetchall()
        conn.executemany(
            "INSERT OR IGNORE INTO accrual_progress (id, accrued_ms) VALUES (?, ?)",
            [(row[0], to_ms(row[1])) for row in starts],
        )
    return cur.rowcount


def record_charges(
    conn: sqlite3.Connection,
    rows: Sequence[LedgerRow],
    progressed: Sequence[Accrual],
    pool_spent: dict[int, int],
) -> None:
    """Post ledger rows and save the state of the accruals that moved, in the caller's
    transaction (their stretch details only where `reshaped`).

    Also adds to the pools' spent totals, and posts the new rows to the daily roll-up and to
    their jobs' cost.
    """
    before = last_seq(conn)
    conn.executemany(
        "INSERT INTO ledger (provider, instance_id, job_id, owner_uid, project, cloud, region,"
        " pool_id, start_ms, end_ms, hourly_price_micros, stopped, amount_micros)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "UPDATE accrual_progress SET accrued_ms = ?, carry = ?, open_amount = ? WHERE id = ?",
        [(a.accrued_ms, a.carry, a.open_amount, a.watermark_id) for a in progressed],
    )
    conn.executemany(
        "UPDATE accrual_watermarks SET open_start_ms = ?, open_price = ?, open_pool_id = ?,"
        " open_stopped = ?, seen_stopped = ?, settled = ? WHERE id = ?",
        [
            (
                a.open_start_ms,
                a.open_price,
                a.open_pool_id,
                int(a.open_stopped),
                int(a.seen_stopped),
                int(a.settled),
                a.watermark_id,
            )
            for a in progressed
            if a.reshaped
        ],
    )
    add_pool_spending(conn, pool_spent)
    if rows:
        post_rollup(conn, before)


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest ledger row's seq (0 when empty): what `post_rollup` counts from."""
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0])


def add_pool_spending(conn: sqlite3.Connection, pool_spent: dict[int, int]) -> None:
    conn.executemany(
        "UPDATE credit_pools SET spent_micros = spent_micros + ? WHERE id = ?",
        [(amount, pool_id) for pool_id, amount in pool_spent.items()],
    )


def post_rollup(conn: sqlite3.Connection, before: int) -> None:
    """Add the ledger rows after seq `before` to the daily roll-up (data transfers also to
    its transfer columns) and to their jobs' posted cost, in the caller's transaction."""
    conn.execute(
        "INSERT INTO cost_daily (day, job_id, cloud, pool_id, owner_uid, project, amount_micros,"
        " transfer_micros, transfer_bytes)"
        " SELECT start_ms / ?, COALESCE(job_id, 0), cloud, COALESCE(pool_id, 0),"
        " MAX(owner_uid), MAX(project), SUM(amount_micros),"
        " SUM(CASE WHEN kind = 'transfer' THEN amount_micros ELSE 0 END), SUM(bytes)"
        " FROM ledger WHERE seq > ? GROUP BY 1, 2, 3, 4"
        " ON CONFLICT (day, job_id, cloud, pool_id)"
        " DO UPDATE SET amount_micros = amount_micros + excluded.amount_micros,"
        " transfer_micros = transfer_micros + excluded.transfer_micros,"
        " transfer_bytes = transfer_bytes + excluded.transfer_bytes",
        (MS_PER_DAY, before),
    )
    conn.execute(
        "UPDATE jobs SET cost_micros = cost_micros + posted.total"
        " FROM (SELECT job_id, SUM(amount_micros) AS total FROM ledger"
        "       WHERE seq > ? AND job_id IS NOT NULL GROUP BY job_id) AS posted"
        " WHERE jobs.id = posted.job_id",
        (before,),
    )


# -- reading -------------------------------------------------------------------------------

_GROUP_COLUMN = {
    "user": "owner_uid",
    "project": "project",
    "cloud": "cloud",
    "pool": "pool_id",
    "job": "job_id",
}


def _first_day(since: float | None) -> int:
    return 0 if since is None else int(since // _SECONDS_PER_DAY)


def costs_by(
    conn: sqlite3.Connection, by: str, since: float | None
) -> list[tuple[Any, int | None, int, int, int]]:
    """(key, an owner uid, total, data-transfer part of the total, bytes transferred) per `by`
    key: user uid, project, cloud, pool id (0 = cash) or job id (0 = no job), from the UTC day
    of `since` on; the owner matters for users and jobs."""
    column = _GROUP_COLUMN[by]
    day = _first_day(since)
    rows = conn.execute(
        f"SELECT {column}, MAX(owner_uid), SUM(amount_micros), SUM(transfer_micros),"
        f" SUM(transfer_bytes) FROM ({_ALL_CHARGES}) GROUP BY {column} ORDER BY 3 DESC, 1",
        (day, day),
    ).fetchall()
    return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]


def spent_by_project(conn: sqlite3.Connection, since: float) -> dict[str, int]:
    """What each project has been charged from the UTC day of `since` on, whoever paid."""
    day = _first_day(since)
    rows = conn.execute(
        f"SELECT project, SUM(amount_micros) FROM ({_ALL_CHARGES})"
        " WHERE project IS NOT NULL GROUP BY project",
        (day, day),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def spent_by_user(conn: sqlite3.Connection, since: float) -> dict[int, int]:
    """What each owner's jobs and clusters have been charged from the UTC day of `since` on."""
    day = _first_day(since)
    rows = conn.execute(
        f"SELECT owner_uid, SUM(amount_micros) FROM ({_ALL_CHARGES})"
        " WHERE owner_uid IS NOT NULL GROUP BY owner_uid",
        (day, day),
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def spent_in_total(conn: sqlite3.Connection, since: float) -> int:
    """What the whole lab has been charged from the UTC day of `since` on."""
    day = _first_day(since)
    row = conn.execute(f"SELECT SUM(amount_micros) FROM ({_ALL_CHARGES})", (day, day)).fetchone()
    return int(row[0] or 0)


def spent_by_pool(conn: sqlite3.Connection, since: float) -> dict[int, tuple[int, float]]:
    """Per pool (0 = cash) from the UTC day of `since` on: (amount, start of its first day)."""
    day = _first_day(since)
    rows = conn.execute(
        f"SELECT pool_id, SUM(amount_micros), MIN(day) FROM ({_ALL_CHARGES}) GROUP BY pool_id",
        (day, day),
    ).fetchall()
    return {int(r[0]): (int(r[1]), float(r[2]) * _SECONDS_PER_DAY) for r in rows}


def job_costs(conn: sqlite3.Connection, job_ids: Sequence[int]) -> dict[int, int]:
    """Exact cost so far (posted + open) of each job."""
    costs = {job_id: 0 for job_id in job_ids}
    for start in range(0, len(job_ids), 500):
        chunk = list(job_ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        for sql in (
            f"SELECT job_id, SUM(amount_micros) FROM ledger WHERE job_id IN ({marks})"
            " GROUP BY job_id",
            "SELECT w.job_id, SUM(p.open_amount) FROM accrual_watermarks AS w"
            f" JOIN accrual_progress AS p ON p.id = w.id WHERE w.job_id IN ({marks})"
            " GROUP BY w.job_id",
        ):
            for job_id, amount in conn.execute(sql, chunk).fetchall():
                costs[job_id] += int(amount)
    return costs


def instance_total(conn: sqlite3.Connection, provider: str, instance_id: str) -> int:
    """Exact charge so far (posted + open) of one instance."""
    posted = conn.execute(
        "SELECT COALESCE(SUM(amount_micros), 0) FROM ledger WHERE provider = ? AND instance_id = ?",
        (provider, instance_id),
    ).fetchone()[0]
    row = conn.execute(
        "SELECT p.open_amount FROM accrual_watermarks AS w JOIN accrual_progress AS p"
        " ON p.id = w.id WHERE w.provider = ? AND w.instance_id = ?",
        (provider, instance_id),
    ).fetchone()
    return int(posted) + (int(row[0]) if row else 0)


def watermark_of(conn: sqlite3.Connection, provider: str, instance_id: str) -> float | None:
    """How far (epoch seconds) an instance has been charged; None before its first pass."""
    row = conn.execute(
        "SELECT p.accrued_ms FROM accrual_watermarks AS w JOIN accrual_progress AS p"
        " ON p.id = w.id WHERE w.provider = ? AND w.instance_id = ?",
        (provider, instance_id),
    ).fetchone()
    return None if row is None else row[0] / 1000


def job_settled(conn: sqlite3.Connection, job_id: int) -> bool:
    """Whether accrual has charged every instance the job ever had up to that instance's end
    (its books are final until it launches again); False before its first instance accrues."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(settled = 0), 0) FROM accrual_watermarks WHERE job_id = ?",
        (job_id,),
    ).fetchone()
    return bool(row[0]) and not row[1]

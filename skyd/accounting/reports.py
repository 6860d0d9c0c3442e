"""Cost reports and the credit-pool view, as JSON-ready rows (and CSV)."""

from __future__ import annotations

import csv
import io
import pwd
import sqlite3
from typing import Any

from skyd.accounting.inputs import iso
from skyd.accounting.records import CreditPool
from skyd.model import micros_to_dollars
from skyd.store import credits as credit_store
from skyd.store import ledger as ledger_store

GROUPINGS = ("user", "project", "cloud", "pool", "job")
BURN_WINDOW_DAYS = 7


def user_label(uid: int | None) -> str:
    if uid is None:
        return "(none)"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def costs_report(
    conn: sqlite3.Connection,
    *,
    by: str,
    since: float | None,
    viewer_uid: int,
    viewer_is_admin: bool,
    others_jobs_in_full: bool,
) -> list[dict[str, Any]]:
    """Spending grouped `by` user, project, cloud, pool or job, largest first.

    For `job`, a non-admin sees other users' jobs as one summary line per user unless the
    daemon is configured to show them in full.
    """
    totals = ledger_store.costs_by(conn, by, since)
    if by == "job":
        totals = _jobs_visible_to(conn, totals, viewer_uid, viewer_is_admin or others_jobs_in_full)
    labels = _labels(conn, by, [row[0] for row in totals])
    return [
        {
            "key": key,
            "name": labels.get(key, str(key)),
            **({"owner": user_label(owner)} if by == "job" else {}),
            "amount": micros_to_dollars(amount),
            "amount_micros": amount,
            # the part of `amount` that is data sent out of clouds (checkpoint pulls)
            "data_transfer": micros_to_dollars(transfer),
            "data_transfer_micros": transfer,
            "data_transfer_bytes": transfer_bytes,
        }
        for key, owner, amount, transfer, transfer_bytes in totals
    ]


_Total = tuple[Any, int | None, int, int, int]  # key, owner, amount, transfer, its bytes


def _jobs_visible_to(
    conn: sqlite3.Connection,
    totals: list[_Total],
    viewer_uid: int,
    in_full: bool,
) -> list[_Total]:
    if in_full:
        return totals
    shown: list[_Total] = []
    others: dict[int | None, tuple[int, int, int]] = {}
    for key, owner, amount, transfer, transfer_bytes in totals:
        if owner == viewer_uid:
            shown.append((key, owner, amount, transfer, transfer_bytes))
        else:
            a, t, b = others.get(owner, (0, 0, 0))
            others[owner] = (a + amount, t + transfer, b + transfer_bytes)
    shown.extend((f"other:{user_label(o)}", o, *sums) for o, sums in others.items())
    shown.sort(key=lambda row: (-row[2], str(row[0])))
    return shown


def _labels(conn: sqlite3.Connection, by: str, keys: list[Any]) -> dict[Any, str]:
    if by == "user":
        return {k: user_label(k) for k in keys}
    if by == "pool":
        names = {p.id: p.name for p in credit_store.list_pools(conn)}
        return {k: "cash" if k == 0 else names.get(k, str(k)) for k in keys}
    if by == "job":
        ids = [k for k in keys if isinstance(k, int)]
        found: dict[Any, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(f"SELECT id, name FROM jobs WHERE id IN ({marks})", chunk):
                found[row[0]] = row[1]
        for key in keys:
            if key == 0:
                found[key] = "(no job)"
            elif isinstance(key, str):
                found[key] = f"jobs of {key.removeprefix('other:')}"
        return found
    return {k: "(none)" if k is None else str(k) for k in keys}


def as_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = ["key", "name", *(["owner"] if rows and "owner" in rows[0] else []), "amount"]
    columns += ["amount_micros", "data_transfer", "data_transfer_micros", "data_transfer_bytes"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue()


def pool_state(pool: CreditPool, now: float) -> str:
    if pool.retired_at is not None and pool.retired_at <= now:
        return "retired"
    if now >= pool.expires_at:
        return "expired"
    if now < pool.starts_at:
        return "not started"
    if pool.balance_micros == 0:
        return "used up"
    return "active"


def _burn_per_hour(recent: tuple[int, float] | None, since: float, now: float) -> float:
    """Micro-dollars per hour over the window, counted from its first day with charges."""
    if recent is None:
        return 0.0
    amount, first_day = recent
    hours = (now - max(since, first_day)) / 3600
    return amount / hours if hours > 0 else 0.0


def credits_view(conn: sqlite3.Connection, now: float) -> dict[str, Any]:
    """Every pool with balance, burn rate (last 7 days), projected run-out and expiry; and cash."""
    window_start = (int(now // 86_400) - BURN_WINDOW_DAYS + 1) * 86_400.0
    recent = ledger_store.spent_by_pool(conn, window_start)
    pools = []
    for pool in credit_store.list_pools(conn):
        state = pool_state(pool, now)
        burn = _burn_per_hour(recent.get(pool.id), max(window_start, pool.starts_at), now)
        run_out: float | None = None
        if state == "active" and burn > 0:
            run_out = now + pool.balance_micros / burn * 3600
        left_at_expiry = 0
        if state == "active":
            left_at_expiry = max(
                0, round(pool.balance_micros - burn * (pool.expires_at - now) / 3600)
            )
        pools.append(
            {
                "id": pool.id,
                "name": pool.name,
                "cloud": pool.cloud,
                "account": pool.account,
                "region": pool.region,
                "state": state,
                "amount": micros_to_dollars(pool.amount_micros),
                "spent": micros_to_dollars(pool.spent_micros),
                "balance": micros_to_dollars(pool.balance_micros),
                "balance_micros": pool.balance_micros,
                "starts_at": iso(pool.starts_at),
                "expires_at": iso(pool.expires_at),
                "burn_per_hour": round(micros_to_dollars(round(burn)), 6),
                "projected_run_out": iso(run_out) if run_out is not None else None,
                "runs_out_before_expiry": run_out is not None and run_out < pool.expires_at,
                "unused_at_expiry": micros_to_dollars(left_at_expiry),
            }
        )
    cash_total = ledger_store.spent_by_pool(conn, 0.0).get(0, (0, 0.0))[0]
    cash_burn = _burn_per_hour(recent.get(0), window_start, now)
    return {
        "pools": pools,
        "cash": {
            "spent": micros_to_dollars(cash_total),
            "burn_per_hour": round(micros_to_dollars(round(cash_burn)), 6),
        },
        "at": iso(now),
    }

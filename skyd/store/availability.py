"""Spot availability change points per offering: record (deduplicated), read, prune."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Sources of skyd's own signals (a launch refused for capacity, a preemption, a launch that
# worked). A scope fed by a market source (a trace, a poller) already knows its
# availability better than these point signals do, so they are kept out of it.
OWN_SOURCES = ("skyd-launch", "skyd-launch-failure", "skyd-preemption")


@dataclass(frozen=True, slots=True)
class AvailabilityRow:
    id: int
    scope: str
    at: float
    available: bool
    source: str


def _latest(conn: sqlite3.Connection, scope: str) -> tuple[float, bool] | None:
    row = conn.execute(
        "SELECT at, available FROM spot_availability WHERE scope = ?"
        " ORDER BY at DESC, id DESC LIMIT 1",
        (scope,),
    ).fetchone()
    return None if row is None else (float(row[0]), bool(row[1]))


def record(conn: sqlite3.Connection, scope: str, at: float, available: bool, source: str) -> bool:
    """Record that `scope` is (un)available from `at`, unless that is already the value in
    force then (only changes are kept). Returns True when a row was written."""
    latest = _latest(conn, scope)
    if latest is not None and latest[1] == available:
        return False
    if latest is not None and at < latest[0]:
        at = latest[0]  # a late signal does not rewrite what was already recorded after it
    conn.execute(
        "INSERT INTO spot_availability (scope, at, available, source) VALUES (?, ?, ?, ?)",
        (scope, at, int(available), source),
    )
    return True


def record_own(
    conn: sqlite3.Connection, scope: str, at: float, available: bool, source: str
) -> bool:
    """Record one of skyd's own signals, unless a market source already feeds `scope`."""
    placeholders = ", ".join("?" for _ in OWN_SOURCES)
    fed = conn.execute(
        f"SELECT 1 FROM spot_availability WHERE scope = ? AND source NOT IN ({placeholders})"
        " LIMIT 1",
        (scope, *OWN_SOURCES),
    ).fetchone()
    if fed is not None:
        return False
    return record(conn, scope, at, available, source)


def last_at(conn: sqlite3.Connection, scope: str) -> float | None:
    latest = _latest(conn, scope)
    return None if latest is None else latest[0]


def rows_after(conn: sqlite3.Connection, after_id: int, since: float) -> list[AvailabilityRow]:
    """Rows written after row `after_id` (all of them from 0), in id order; of the rows
    before `since`, only each scope's last one (the value in force at `since`)."""
    found = conn.execute(
        "SELECT id, scope, at, available, source FROM spot_availability a WHERE id > ?"
        " AND (at >= ? OR NOT EXISTS (SELECT 1 FROM spot_availability b"
        "  WHERE b.scope = a.scope AND b.at < ?"
        "  AND (b.at > a.at OR (b.at = a.at AND b.id > a.id))))"
        " ORDER BY id",
        (after_id, since, since),
    ).fetchall()
    return [AvailabilityRow(int(r[0]), r[1], float(r[2]), bool(r[3]), r[4]) for r in found]


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Delete rows older than `before`, keeping each scope's last one before it."""
    cursor = conn.execute(
        "DELETE FROM spot_availability WHERE at < ? AND EXISTS (SELECT 1 FROM spot_availability b"
        " WHERE b.scope = spot_availability.scope AND b.at < ? AND (b.at > spot_availability.at"
        " OR (b.at = spot_availability.at AND b.id > spot_availability.id)))",
        (before, before),
    )
    return cursor.rowcount

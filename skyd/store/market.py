"""Market history: spot prices and availability as a time series, each value with its time."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skyd.store.db import Store


@dataclass(frozen=True, slots=True)
class Observation:
    """One value seen for a scope (an offer key, or a zone scope `cloud/region/zone`)."""

    scope: str
    at: float  # when the value came in force (the cloud's timestamp when it gives one)
    source: str
    spot_price_micros: int | None = None
    available: bool | None = None
    preemptions_per_hour: float | None = None


def record(
    conn: sqlite3.Connection, observations: Sequence[Observation], observed_at: float
) -> None:
    conn.executemany(
        "INSERT INTO market_observations (scope, at, observed_at, spot_price_micros, available,"
        " preemptions_per_hour, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                o.scope,
                o.at,
                observed_at,
                o.spot_price_micros,
                None if o.available is None else int(o.available),
                o.preemptions_per_hour,
                o.source,
            )
            for o in observations
        ],
    )


def latest(store: Store, scope: str) -> Observation | None:
    row = store.conn.execute(
        "SELECT * FROM market_observations WHERE scope = ? ORDER BY at DESC, id DESC LIMIT 1",
        (scope,),
    ).fetchone()
    return None if row is None else _from_row(row)


def history(
    store: Store, scope: str, *, since: float | None = None, limit: int = 10_000
) -> list[Observation]:
    sql = "SELECT * FROM market_observations WHERE scope = ?"
    params: list[Any] = [scope]
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    sql += " ORDER BY at, id LIMIT ?"
    params.append(limit)
    return [_from_row(r) for r in store.conn.execute(sql, params).fetchall()]


def _from_row(row: sqlite3.Row) -> Observation:
    available = row["available"]
    return Observation(
        scope=row["scope"],
        at=row["at"],
        source=row["source"],
        spot_price_micros=row["spot_price_micros"],
        available=None if available is None else bool(available),
        preemptions_per_hour=row["preemptions_per_hour"],
    )

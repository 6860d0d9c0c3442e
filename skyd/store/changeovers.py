"""Each started attempt as the job's events recorded it: placed (PROVISIONING) → run (RUNNING)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

# The RUNNING event's data key for a run that began and ended between two polls: its
# RUNNING event was recorded at its end, so the time up to it is not a changeover.
RAN_UNSEEN = "ran_unseen"

# One indexed query (events_run_started, migration 0011): the newest RUNNING events after
# `seq`, each with the PROVISIONING event before it in its job's history (events_by_job).
# A RUNNING state only follows SETTING_UP, which only follows PROVISIONING: the
# PROVISIONING event just before a RUNNING one is the same attempt's.
_STARTED = """
SELECT r.seq, r.job_id, r.at AS running_at, r.data_json AS running_data,
       p.at AS placed_at, p.data_json AS placed_data
FROM events AS r
JOIN events AS p ON p.seq = (
    SELECT q.seq FROM events AS q
    WHERE q.job_id = r.job_id AND q.seq < r.seq AND q.kind = 'state' AND q.state = 'PROVISIONING'
    ORDER BY q.seq DESC LIMIT 1
)
WHERE r.kind = 'state' AND r.state = 'RUNNING' AND r.seq > ?
ORDER BY r.seq DESC
LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class StartedAttempt:
    """One attempt that reached RUNNING: when it was placed and when its run was seen."""

    seq: int  # the RUNNING event's
    job_id: int
    placed_at: float
    running_at: float
    placement: dict[str, Any]
    ran_unseen: bool


def started_after(conn: sqlite3.Connection, seq: int, limit: int) -> list[StartedAttempt]:
    """The newest `limit` attempts whose RUNNING event came after `seq`, newest first."""
    found = []
    for row in conn.execute(_STARTED, (seq, limit)):
        placed = json.loads(row[5] or "{}")
        running = json.loads(row[3] or "{}")
        placement = placed.get("placement") if isinstance(placed, dict) else None
        found.append(
            StartedAttempt(
                seq=int(row[0]),
                job_id=int(row[1]),
                placed_at=float(row[4]),
                running_at=float(row[2]),
                placement=placement if isinstance(placement, dict) else {},
                ran_unseen=isinstance(running, dict) and bool(running.get(RAN_UNSEEN)),
            )
        )
    return found

"""End to end: the daemon acts on the spot policy while a deadline job runs.

A real daemon on a real SQLite file, its `sim` cloud replaying a trace on an injected
clock that the test moves on, a real job process. The job arrives as an outage of its
only zone begins, with less slack than the policy's reserve: it is bridged on demand at
once. Spot comes back; once the run has lasted long enough, the policy would leave on
demand for it, and the daemon moves the running job: its on-demand attempt is stopped
and given back, and it is placed on spot. Before this, a deadline job placed on demand
stayed there to its end, whatever the policy said; and once a deadline job was part done
(time left under its whole estimate, as here at the move) the placement ruled every spot
offer out as too late, so the policy never saw spot again.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyctl.follow import describe
from skyd.testing.daemon import wait_until
from skyd.testing.sim_replay import first_event, held_replay

TICK_S = 600
START = 1_800_000_000.0
DAYS = 8
ROWS = DAYS * 144
NOW_ROW = 7 * 144  # a week of past: the policy's history
OUTAGE_ROWS = 12  # two hours down from NOW_ROW, then up to the end


def _trace() -> list[int]:
    """A week of five hours up, one down; then a two-hour outage from now, and up."""
    rows = [0 if row % 36 >= 30 else 1 for row in range(NOW_ROW)]
    rows[NOW_ROW - 1] = 1
    return rows + [0] * OUTAGE_ROWS + [1] * (ROWS - NOW_ROW - OUTAGE_ROWS)


TASK = """\
name: bridged
resources:
  accelerators: V100:1
estimated_runtime: 8h
deadline: 9h
job_recovery:
  strategy: deadline
run: sleep 600
"""


def _placements(client: DaemonClient, job_id: int) -> list[dict[str, Any]]:
    return [
        e["data"]["placement"]
        for e in client.get_job(job_id)["events"]
        if e["kind"] == "state" and e["state"] == "PROVISIONING"
    ]


def _running(client: DaemonClient, job_id: int, attempt: int) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        job = client.get_job(job_id)
        placed = [e for e in job["events"] if e["kind"] == "state" and e["state"] == "PROVISIONING"]
        return job if job["state"] == "RUNNING" and len(placed) == attempt else None

    return wait_until(found, timeout=60, error=lambda: client.get_job(job_id))


def test_a_bridged_job_moves_back_to_spot_when_it_returns(tmp_path: Path) -> None:
    trace = _trace()
    assert trace[NOW_ROW] == 0 and trace[NOW_ROW + OUTAGE_ROWS] == 1
    zones = {"sim-a": (trace, 1.0)}
    with held_replay(
        tmp_path / "d", zones, TICK_S, NOW_ROW, START, 168.0, boot_seconds=0.0
    ) as running:
        daemon, client, clock = running
        job_id = int(client.submit_task(TASK, str(tmp_path), None)["id"])
        # an hour of slack, under the reserve for eight hours of five-hour runs, and
        # outages of an hour: bridged on demand at once
        bridged = first_event(client, job_id, "state", "PROVISIONING")["data"]["placement"]
        assert bridged["spot"] is False, bridged
        assert "(bridge the outage)" in bridged["why"], bridged
        _running(client, job_id, 1)
        # spot is back, and stays: once its run has proven itself, the job is moved
        daemon.run_on_loop(clock.advance((OUTAGE_ROWS + 9) * TICK_S))
        moved = first_event(client, job_id, "moved", None)
        assert moved["state"] == "RECOVERING"
        assert moved["data"]["from"] == "on_demand:sim/r1"
        assert moved["data"]["to"] == "spot:sim/r1/sim-a"
        assert moved["data"]["why"] == "spot is back"
        assert describe(moved) == (
            "⚙",
            "Moving: skyd: moving from on_demand:sim/r1 to spot:sim/r1/sim-a (spot is back)",
        )
        assert moved["data"]["on_demand_seconds"] > 0
        # after spot came back: below the reserve its run had to last a while first (at
        # the policy's recheck on the clock's way, or at the advance's end)
        returned = START + OUTAGE_ROWS * TICK_S
        assert returned < moved["at"] <= returned + 9 * TICK_S, moved
        wait_until(lambda: len(_placements(client, job_id)) == 2 or None, timeout=30)
        back = _placements(client, job_id)[1]
        assert back["spot"] is True and back["zone"] == "sim-a", back
        assert back["why"].startswith("skyd: spot:sim/r1/sim-a (spot is back)"), back
        job = _running(client, job_id, 2)
        assert job["preemptions"] == 0  # a move is not a preemption
        client.cancel_job(job_id)
        wait_until(lambda: client.get_job(job_id)["state"] == "CANCELLED" or None, timeout=30)
    with closing(sqlite3.connect(daemon.settings.db_path)) as db:
        rows = db.execute(
            "SELECT attempt, spot, state FROM instances WHERE job_id = ? ORDER BY attempt",
            (job_id,),
        ).fetchall()
    # the on-demand instance was given back at the move, the spot one at the cancel
    assert rows == [(1, 0, "TERMINATED"), (2, 1, "TERMINATED")], rows

"""End to end: the global planner prices moving a running job with the changeover the daemon
measured of its launches, and the move it proposes says which changeover it used.

A real daemon on a real SQLite file, its planner in its own process reading that file, its
`sim` cloud replaying a trace on an injected clock that the test moves on, a real job
process. `[recovery] changeover_hours` is 0.2 h; the sim cloud's instances take half an
hour to boot. A `migrate: true` job starts in zone a while the cheaper zone b has no spot
capacity; once it runs, zone b comes back and the planner proposes the move, priced with
the half hour measured of the job's own launch. Before, the planner priced every move with
the configured figure, however long launches really took, and said nothing of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyctl.job_view import job_page
from skyd.clock import VirtualClock
from skyd.testing.daemon import DaemonThread, wait_until
from skyd.testing.sim_replay import first_event, held_replay

TICK_S = 600
START = 1_800_000_000.0
ROWS = 8 * 144
NOW_ROW = 7 * 144
BOOT_S = 1800.0  # the sim's boot: half an hour on the daemon's clock
CONFIGURED_H = 0.2
B_BACK_ROWS = 6  # zone b has no spot capacity for the first hour from now

TASK = """\
name: movable
resources:
  accelerators: V100:1
  use_spot: true
estimated_runtime: 8h
migrate: true
run: sleep 600
"""


def _zones() -> dict[str, tuple[list[int], float]]:
    """Zone a always up at $1/h; zone b at $0.10/h, down from now for an hour, then up."""
    b = [1] * NOW_ROW + [0] * B_BACK_ROWS + [1] * (ROWS - NOW_ROW - B_BACK_ROWS)
    return {"sim-a": ([1] * ROWS, 1.0), "sim-b": (b, 0.1)}


def _proposal(
    daemon: DaemonThread, client: DaemonClient, clock: VirtualClock, job_id: int
) -> dict[str, Any]:
    """The planner's proposal for the job, moving the clock on a second at a time (its
    passes are debounced on the daemon's clock) until there is one."""

    def found() -> dict[str, Any] | None:
        for event in client.get_job(job_id)["events"]:
            if event["kind"] == "migration_proposed":
                return dict(event)
        daemon.run_on_loop(clock.advance(1.0))
        return None

    return wait_until(found, timeout=60, error=lambda: client.get_job(job_id))


def test_the_planners_move_is_priced_with_the_measured_changeover(tmp_path: Path) -> None:
    with held_replay(
        tmp_path / "d",
        _zones(),
        TICK_S,
        NOW_ROW,
        START,
        168.0,
        boot_seconds=BOOT_S,
        changeover_hours=CONFIGURED_H,
    ) as running:
        daemon, client, clock = running
        job_id = int(client.submit_task(TASK, str(tmp_path), None)["id"])
        placed = first_event(client, job_id, "state", "PROVISIONING")
        assert placed["data"]["placement"]["zone"] == "sim-a", placed
        # the instance boots half an hour on; then the job's run starts
        daemon.run_on_loop(clock.advance(BOOT_S))
        wait_until(
            lambda: client.get_job(job_id)["state"] == "RUNNING" or None,
            timeout=60,
            error=lambda: client.get_job(job_id),
        )
        started = next(e for e in client.get_job(job_id)["events"] if e["state"] == "RUNNING")
        measured_s = started["at"] - placed["at"]
        assert BOOT_S <= measured_s < BOOT_S + TICK_S, started
        assert not [
            e for e in client.get_job(job_id)["events"] if e["kind"] == "migration_proposed"
        ]
        # zone b has spot capacity again, at a tenth of the price
        daemon.run_on_loop(clock.advance(B_BACK_ROWS * TICK_S - BOOT_S))
        proposal = _proposal(daemon, client, clock, job_id)
        hours = measured_s / 3600.0
        text = f"changeover {hours:.2f} h (p90 of 1 launch; configured 0.20 h)"
        assert proposal["data"]["to"] == "sim/r1/sim-b/p3.2xlarge/spot", proposal
        assert f"; {text}; " in proposal["reason"], proposal["reason"]
        figures = proposal["data"]["changeover_figures"]
        assert figures["hours"] == pytest.approx(hours, abs=1e-6)
        assert figures["launches"] == 1 and figures["configured_hours"] == CONFIGURED_H
        # a move costs one changeover at the job's price: $1/h for the measured time
        assert proposal["data"]["move_cost"] == pytest.approx(hours, abs=1e-5)
        # `skyctl show` says it beside where the job runs
        page = job_page(client.get_job(job_id), clock.now())
        assert (
            "  move   proposed: to sim/r1/sim-b/p3.2xlarge/spot, the move costs "
            f"${hours:.2f}\n         {text}\n"
        ) in page, page
        client.cancel_job(job_id)
        wait_until(lambda: client.get_job(job_id)["state"] == "CANCELLED" or None, timeout=30)

"""End to end: the spot policy plans with the changeover the daemon measured of its launches
when they take longer than the configured one, and the job's events say which it used.

A real daemon on a real SQLite file, its `sim` cloud replaying a trace on an injected
clock that the test moves on, real job processes. `[recovery] changeover_hours` is 0.2 h;
the sim cloud's instances take half an hour to boot. The first deadline job is placed
with the configured 0.2 h (nothing measured yet); once its instance has booted and its
run started, the next deadline job is planned with the half hour the daemon measured.
Before, the policy planned every job with the configured figure, however long launches
really took, and left jobs too little slack for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skyctl.client import DaemonClient
from skyd.scheduler.selection import DeadlineView
from skyd.spec import TaskSpec
from skyd.store import jobs as job_store
from skyd.testing.daemon import DaemonThread, wait_until
from skyd.testing.sim_replay import first_event, held_replay

TICK_S = 600
START = 1_800_000_000.0
ROWS = 8 * 144
NOW_ROW = 7 * 144
BOOT_S = 1800.0  # the sim's boot: half an hour on the daemon's clock
CONFIGURED_H = 0.2

TASK = """\
name: measured
resources:
  accelerators: V100:1
estimated_runtime: 8h
deadline: 24h
job_recovery:
  strategy: deadline
run: sleep 600
"""


def _policy_view(daemon: DaemonThread, job_id: int) -> DeadlineView:
    """What the spot policy sees of the job now, as the daemon builds it (on its loop)."""

    async def view() -> DeadlineView:
        scheduler = daemon.daemon.scheduler
        assert scheduler is not None
        job = job_store.get_job(scheduler.store, job_id)
        built = scheduler.selector.deadline_state(
            job,
            TaskSpec.from_json(job.spec_json),
            lambda: job_store.job_events(scheduler.store, job_id),
        )
        assert built is not None
        return built

    return daemon.run_on_loop(view())


def _placed(client: DaemonClient, job_id: int) -> dict[str, Any]:
    return first_event(client, job_id, "state", "PROVISIONING")


def test_launches_slower_than_configured_are_planned_with_as_measured(tmp_path: Path) -> None:
    zones = {"sim-a": ([1] * ROWS, 1.0)}
    with held_replay(
        tmp_path / "d",
        zones,
        TICK_S,
        NOW_ROW,
        START,
        168.0,
        boot_seconds=BOOT_S,
        changeover_hours=CONFIGURED_H,
    ) as running:
        daemon, client, clock = running
        first = int(client.submit_task(TASK, str(tmp_path), None)["id"])
        placed = _placed(client, first)
        assert placed["at"] == START
        assert "; changeover 0.20 h (configured; no launch measured yet); " in placed["reason"]
        assert placed["data"]["placement"]["changeover_figures"]["measured_hours"] is None
        assert _policy_view(daemon, first).state.changeover_hours == CONFIGURED_H
        # the instance boots half an hour on; then the job's run starts
        daemon.run_on_loop(clock.advance(BOOT_S))
        wait_until(
            lambda: client.get_job(first)["state"] == "RUNNING" or None,
            timeout=60,
            error=lambda: client.get_job(first),
        )
        started = next(e for e in client.get_job(first)["events"] if e["state"] == "RUNNING")
        measured_s = started["at"] - placed["at"]
        assert BOOT_S <= measured_s < BOOT_S + TICK_S, started
        # the next deadline job is planned with the changeover measured of that launch
        second = int(client.submit_task(TASK, str(tmp_path), None)["id"])
        again = _placed(client, second)
        hours = measured_s / 3600.0
        assert (
            f"; changeover {hours:.2f} h (p90 of 1 launch; configured 0.20 h); "
            in (again["reason"])
        ), again["reason"]
        figures = again["data"]["placement"]["changeover_figures"]
        assert figures["hours"] == pytest.approx(hours, abs=1e-6)
        assert figures["launches"] == 1 and figures["configured_hours"] == CONFIGURED_H
        # and so is the first job, as the policy looks at it again while it runs
        assert _policy_view(daemon, first).state.changeover_hours == pytest.approx(hours)
        for job_id in (first, second):
            client.cancel_job(job_id)
        wait_until(
            lambda: all(client.get_job(j)["state"] == "CANCELLED" for j in (first, second)) or None,
            timeout=30,
        )

"""End to end: the spot availability history the daemon recorded changes where a deadline
job goes, and `skyctl show` says what history the policy used.

A real daemon on a real SQLite file, its `sim` cloud replaying a trace written here on an
injected clock, held still at the row the replay starts from. Zone sim-a is the cheaper
spot but for a week its runs have lasted twenty minutes; sim-b's have lasted days. Both
are up now, sim-a for ten minutes. With its history (loaded from the trace's past into
the store at start) the policy skips sim-a, whose runs of that age ended before a
changeover would be over, and takes sim-b; with `history_hours = 0` it sees only prices
and takes sim-a.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path
from typing import Any

from skyctl.__main__ import main as skyctl
from skyctl.client import DaemonClient
from skyd.clock import VirtualClock
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.sim_replay import write_zone_trace

TICK_S = 600
START = 1_800_000_000.0
DAYS = 8
ROWS = DAYS * 144


def _short_runs() -> list[int]:
    """Up twenty minutes, down twenty minutes, over and over."""
    return [1 if (row // 2) % 2 == 0 else 0 for row in range(ROWS)]


def _long_runs() -> list[int]:
    """Up for two days at a time, then an hour's outage."""
    return [0 if 100 <= row % 288 < 106 else 1 for row in range(ROWS)]


def _now_row(short: list[int]) -> int:
    """Seven days in, ten minutes into one of sim-a's up runs."""
    row = 7 * 144
    while not (short[row] and not short[row - 1]):
        row += 1
    return row + 1


TASK = """\
name: deadline-train
resources:
  accelerators: V100:1
estimated_runtime: 4h
deadline: 24h
job_recovery:
  strategy: deadline
run: echo trained
"""


def _placed(root: Path, history_hours: float) -> tuple[dict[str, Any], str, str, int]:
    """Run the scenario: the job's first placement and its event's reason, `skyctl show`'s
    page, and how many availability rows the store holds for sim-a."""
    root.mkdir()
    short = _short_runs()
    now_row = _now_row(short)
    settings = settings_for_tests(root)
    settings.sim.enabled = True
    settings.sim.traces = write_zone_trace(
        root / "trace", "history", {"sim-a": (short, 1.0), "sim-b": (_long_runs(), 1.3)}, TICK_S
    )
    settings.sim.speedup = 1.0
    settings.sim.start_offset_seconds = float(now_row * TICK_S)
    settings.recovery.history_hours = history_hours
    clock = VirtualClock(START)  # held still: the market stays at the starting row
    daemon = DaemonThread(settings, clock=clock).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            job_id = int(client.submit_task(TASK, str(root), None)["id"])

            def placed() -> dict[str, Any] | None:
                job = client.get_job(job_id)
                for event in job["events"]:
                    placement = (event.get("data") or {}).get("placement")
                    if event.get("state") == "PROVISIONING" and placement:
                        return dict(event)
                return None

            event = wait_until(placed, timeout=60, error=lambda: client.get_job(job_id))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert skyctl(["--socket", daemon.socket_path, "show", str(job_id)]) == 0
    finally:
        assert daemon.stop() == 0
    with contextlib.closing(sqlite3.connect(settings.db_path)) as db:
        (rows,) = db.execute(
            "SELECT COUNT(*) FROM spot_availability WHERE scope = 'sim/r1/sim-a/p3.2xlarge'"
        ).fetchone()
    return event["data"]["placement"], str(event["reason"]), out.getvalue(), int(rows)


def test_a_zone_whose_runs_are_short_is_avoided_only_with_its_history(tmp_path: Path) -> None:
    placement, reason, page, rows = _placed(tmp_path / "with", 168.0)
    assert placement["spot"] is True
    assert placement["zone"] == "sim-b", placement
    # a week of sim-a's recorded runs (every change point of the trace's past) in the store
    assert rows >= 7 * 72
    facts = {f["zone"]: f for f in placement["spot_history"]}
    assert facts["sim/r1/sim-a"]["mean_up_hours"] == 0.333
    # a week before the submission, and the sample at now (as bench.spot shows it)
    assert facts["sim/r1/sim-a"]["observed_hours"] == 168.167
    assert placement["history"][0] == (
        "zone sim/r1/sim-a: 7.0 days, up 50 %, mean run 0.33 h, mean outage 0.33 h"
    )
    # `skyctl show`: one zone a line under the placement, and the event says it too
    assert (
        "  history  zone sim/r1/sim-a: 7.0 days, up 50 %, mean run 0.33 h, mean outage 0.33 h\n"
        "           zone sim/r1/sim-b: 7.0 days, up 98 %, mean run 32.8 h, mean outage 1.0 h\n"
    ) in page
    assert reason == (
        "placed on sim: skyd: spot:sim/r1/sim-b (take spot); history: zone sim/r1/sim-a: 7.0 days,"
        " up 50 %, mean run 0.33 h, mean outage 0.33 h; zone sim/r1/sim-b: 7.0 days, up 98 %,"
        " mean run 32.8 h, mean outage 1.0 h"
    )

    blind, reason, page, _rows = _placed(tmp_path / "without", 0.0)
    assert blind["spot"] is True
    assert blind["zone"] == "sim-a", blind  # the cheaper spot, its short runs unseen
    assert reason.endswith("(take spot); history: no spot availability history")
    assert "  history  no spot availability history\n" in page

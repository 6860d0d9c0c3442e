"""End to end: the spot availability history the daemon recorded changes what a deadline
job does, and `skyctl show` and the job's events say what history the policy used.

A real daemon on a real SQLite file, its `sim` cloud replaying a trace written here on an
injected clock, held still at the row the replay starts from (and moved on by the test).
The trace's week before that row is the history, loaded into the store at start; the
same scenario with `[recovery] history_hours = 0` shows the policy no history, and it
decides otherwise:

* zone sim-a is the cheaper spot, but its runs have lasted twenty minutes; sim-b's last
  days. With the history the policy skips sim-a (its runs of this age ended before a
  changeover would be over) for sim-b; blind, it takes sim-a.
* a zone whose outages last ten minutes goes down as a job with an hour of slack arrives:
  with the history the job waits the outage out and takes spot when it returns; blind,
  it pays a changeover to on demand at once.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skyctl.__main__ import main as skyctl
from skyctl.client import DaemonClient
from skyd.clock import VirtualClock
from skyd.testing.daemon import DaemonThread
from skyd.testing.sim_replay import first_event, held_replay

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


@contextlib.contextmanager
def _daemon(
    root: Path, zones: dict[str, tuple[list[int], float]], now_row: int, history_hours: float
) -> Iterator[tuple[DaemonThread, DaemonClient, VirtualClock]]:
    """A daemon whose sim cloud replays `zones` from `now_row`, on a clock held still."""
    with held_replay(root, zones, TICK_S, now_row, START, history_hours) as running:
        yield running


def _show(daemon: DaemonThread, job_id: int) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert skyctl(["--socket", daemon.socket_path, "show", str(job_id)]) == 0
    return out.getvalue()


def _placed(root: Path, history_hours: float) -> tuple[dict[str, Any], str, str, int]:
    """Run the scenario: the job's first placement and its event's reason, `skyctl show`'s
    page, and how many availability rows the store holds for sim-a."""
    short = _short_runs()
    zones = {"sim-a": (short, 1.0), "sim-b": (_long_runs(), 1.3)}
    with _daemon(root, zones, _now_row(short), history_hours) as (daemon, client, _clock):
        job_id = int(client.submit_task(TASK, str(root), None)["id"])
        event = first_event(client, job_id, "state", "PROVISIONING")
        page = _show(daemon, job_id)
    with contextlib.closing(sqlite3.connect(daemon.settings.db_path)) as db:
        (rows,) = db.execute(
            "SELECT COUNT(*) FROM spot_availability WHERE scope = 'sim/r1/sim-a/p3.2xlarge'"
        ).fetchone()
    return event["data"]["placement"], str(event["reason"]), page, int(rows)


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
        "  history     zone sim/r1/sim-a: 7.0 days, up 50 %, mean run 0.33 h, mean outage 0.33 h\n"
        "              zone sim/r1/sim-b: 7.0 days, up 98 %, mean run 32.8 h, mean outage 1.0 h\n"
        "  changeover  0.20 h (configured; no launch measured yet)\n"
    ) in page
    # and the changeover it planned with: the configured one, as nothing was launched yet
    assert reason == (
        "placed on sim: skyd: spot:sim/r1/sim-b (take spot); changeover 0.20 h (configured;"
        " no launch measured yet); history: zone sim/r1/sim-a: 7.0 days,"
        " up 50 %, mean run 0.33 h, mean outage 0.33 h; zone sim/r1/sim-b: 7.0 days, up 98 %,"
        " mean run 32.8 h, mean outage 1.0 h"
    )

    blind, reason, page, _rows = _placed(tmp_path / "without", 0.0)
    assert blind["spot"] is True
    assert blind["zone"] == "sim-a", blind  # the cheaper spot, its short runs unseen
    assert reason.endswith("; history: no spot availability history")
    assert "  history     no spot availability history\n" in page


def _flickering() -> list[int]:
    """Up nearly always: a ten-minute outage every five hours."""
    return [0 if row % 30 == 0 and row else 1 for row in range(ROWS)]


TIGHT_TASK = TASK.replace("deadline: 24h", "deadline: 5h")


def test_a_short_outage_is_waited_out_only_with_a_record_of_short_outages(
    tmp_path: Path,
) -> None:
    """Submitted at the start of one of sim-a's outages with an hour of slack: its record
    says outages end within ten minutes, so the policy waits rather than pay a changeover
    to on demand and another back; when spot returns it takes spot. Blind, it bridges the
    outage on demand at once."""
    flicker = _flickering()
    now_row = 7 * 144 + (-(7 * 144) % 30)  # an outage begins
    assert flicker[now_row] == 0 and flicker[now_row - 1] == 1
    with _daemon(tmp_path / "with", {"sim-a": (flicker, 1.0)}, now_row, 168.0) as running:
        daemon, client, clock = running
        job_id = int(client.submit_task(TIGHT_TASK, str(tmp_path), None)["id"])
        waiting = first_event(client, job_id, "waiting", None)
        assert waiting["reason"].startswith("waiting: skyd: wait (outage likely short: wait)")
        assert "history: zone sim/r1/sim-a: 7.0 days, up 97 %" in waiting["reason"]
        assert "mean outage 0.17 h" in waiting["reason"]
        assert client.get_job(job_id)["state"] == "PENDING"
        # ten minutes on, the trace's next row: spot is back
        daemon.run_on_loop(clock.advance(TICK_S))
        placed = first_event(client, job_id, "state", "PROVISIONING")
    placement = placed["data"]["placement"]
    assert placement["spot"] is True and placement["zone"] == "sim-a", placement
    assert placed["at"] == START + TICK_S

    with _daemon(tmp_path / "without", {"sim-a": (flicker, 1.0)}, now_row, 0.0) as running:
        daemon, client, _clock = running
        job_id = int(client.submit_task(TIGHT_TASK, str(tmp_path), None)["id"])
        blind = first_event(client, job_id, "state", "PROVISIONING")
    placement = blind["data"]["placement"]
    assert placement["spot"] is False, placement  # on demand through the outage
    assert "(bridge the outage); changeover 0.20 h" in blind["reason"]
    assert blind["reason"].endswith("; history: no spot availability history")

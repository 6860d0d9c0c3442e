"""The changeover the spot policy plans with: measured of the daemon's recorded launches (a
high quantile, the configured figure a floor), from the job events of a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.model import JobState
from skyd.scheduler.changeover import estimate
from skyd.scheduler.changeover_log import ChangeoverLog
from skyd.store import open_store
from skyd.store.db import open_reader
from tests.scheduler.launch_history import History

D = 0.2  # configured changeover, hours
T0 = 1_800_000_000.0


def test_the_estimate_is_the_p90_of_the_launches_with_the_configured_figure_a_floor() -> None:
    # 20 launches of 10..29 minutes: p90 is the 19th smallest (an observed value, at or
    # above the quantile), 28 minutes
    minutes = [float(m) for m in range(10, 30)]
    used = estimate([m * 60.0 for m in minutes], configured_hours=D)
    assert used.measured_hours == pytest.approx(28 / 60)
    assert used.hours == pytest.approx(28 / 60) and used.measured
    assert used.text() == "changeover 0.47 h (p90 of 20 launches; configured 0.20 h)"
    # one launch: its own figure
    one = estimate([1116.0], configured_hours=D)
    assert one.hours == pytest.approx(0.31)
    assert one.text() == "changeover 0.31 h (p90 of 1 launch; configured 0.20 h)"


def test_launches_faster_than_configured_leave_the_configured_changeover() -> None:
    used = estimate([300.0, 360.0, 420.0], configured_hours=D)
    assert used.hours == D and not used.measured
    assert used.measured_hours == pytest.approx(420 / 3600)
    assert used.text() == "changeover 0.20 h (configured; p90 of 3 launches: 0.12 h)"


def test_with_nothing_measured_the_configured_changeover_is_used() -> None:
    used = estimate([], configured_hours=D)
    assert (used.hours, used.measured_hours, used.launches) == (D, None, 0)
    assert used.text() == "changeover 0.20 h (configured; no launch measured yet)"
    assert used.figures() == {
        "hours": D,
        "configured_hours": D,
        "measured_hours": None,
        "launches": 0,
    }


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(open_store(tmp_path))


def _log(history: History, sync_s: float = 10.0) -> ChangeoverLog:
    return ChangeoverLog(store=history.store, configured_hours=D, checkpoint_sync_s=sync_s)


def test_attempts_that_never_ran_are_not_launches(history: History) -> None:
    t = T0
    history.ran("sim", t, 1800.0)
    # a launch refused for capacity; one cancelled while it booted; one while it set up
    history.attempt("sim", t, [(JobState.PENDING, t + 5000)])
    history.attempt("sim", t, [(JobState.CANCELLED, t + 6000)])
    history.attempt("sim", t, [(JobState.SETTING_UP, t + 60), (JobState.CANCELLED, t + 7000)])
    # nothing launched (a cluster's instances); a run seen only once it had ended
    history.ran("sim", t, 9000.0, cluster=True)
    history.ran("sim", t, 8000.0, unseen=True)
    used = _log(history).for_clouds({"sim"})
    assert used.launches == 1
    assert used.hours == pytest.approx(0.5)
    assert used.text() == "changeover 0.50 h (p90 of 1 launch; configured 0.20 h)"


def test_only_the_clouds_the_job_may_use_count_and_the_newest_twenty(history: History) -> None:
    # an old slow launch on sim, then twenty quick ones, and slow ones on another cloud
    history.ran("sim", T0, 3600.0)
    for i in range(20):
        history.ran("sim", T0 + 100 * (i + 1), 900.0 + i)
    history.ran("gcp", T0 + 5000, 7200.0)
    log = _log(history)
    sim = log.for_clouds({"sim"})
    assert sim.launches == 20
    assert sim.measured_hours == pytest.approx(918 / 3600)  # the slow hour fell out
    # gcp's launches carry half the checkpoint sync interval: work lost since the last sync
    assert log.for_clouds({"gcp"}).measured_hours == pytest.approx((7200 + 5) / 3600)
    assert log.for_clouds({"gcp"}).text() == (
        "changeover 2.00 h (p90 of 1 launch + 5 s since the last checkpoint sync;"
        " configured 0.20 h)"
    )
    # the newest 20 of both: 19 of sim's and gcp's; one slow launch in twenty is above
    # the p90, and a job that may land on gcp loses the work since its last sync there
    pooled = log.for_clouds({"sim", "gcp"})
    assert pooled.launches == 20
    assert pooled.measured_hours == pytest.approx((919 + 5) / 3600)
    assert log.for_clouds({"aws"}).measured_hours is None  # never launched there
    assert log.for_clouds({"aws"}).hours == D


def test_a_launch_recorded_after_an_estimate_changes_the_next_one(history: History) -> None:
    log = _log(history)
    assert log.for_clouds({"sim"}).measured_hours is None
    history.ran("sim", T0, 1800.0)
    assert log.for_clouds({"sim"}).hours == pytest.approx(0.5)
    history.ran("sim", T0 + 10, 3600.0)
    assert log.for_clouds({"sim"}).hours == pytest.approx(1.0)  # p90 of two: the longer
    # a second log on the same file (a restarted daemon) reads the same history back
    assert history.store.path is not None
    again = _log(History(open_reader(history.store.path)))
    assert again.for_clouds({"sim"}).hours == pytest.approx(1.0)

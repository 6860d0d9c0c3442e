"""Spot availability in the store: only changes kept, skyd's own signals only where no source
feeds, old rows pruned (the value in force at the cut kept), resampled onto the policy's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skyd.clock import VirtualClock
from skyd.config import ConfigError, RecoverySettings, load_settings
from skyd.market.availability_grid import resample, summary, summary_text
from skyd.market.availability_log import AvailabilityLog
from skyd.store import availability as availability_store
from skyd.store import open_store

KEY = "sim/r1/za/p3.2xlarge"
T0 = 1_800_000_000.0


def test_resample_carries_the_last_value_forward_and_knows_nothing_before_the_first() -> None:
    times = np.array([T0 + 100, T0 + 700, T0 + 1000])
    values = np.array([True, False, True])
    got = resample(times, values, now=T0 + 1900, since=T0, step_seconds=300)
    # grid: 1900, 1600, ..., 100 (the first observation): 7 samples
    assert got.history.tolist() == [True, True, False, True, True, True, True]
    assert got.step_hours == pytest.approx(300 / 3600)
    assert got.current_run_hours == pytest.approx(900 / 3600)  # up since T0 + 1000
    # a change point after now is not known yet
    early = resample(times, values, now=T0 + 800, since=T0, step_seconds=300)
    assert early.history.tolist() == [True, True, False]
    assert early.current_run_hours == pytest.approx(100 / 3600)
    # before any observation: no history at all (not "unavailable")
    assert len(resample(times, values, now=T0, since=T0 - 1e5, step_seconds=300).history) == 0
    # the window's start cuts the history and the current run's age
    late = resample(times, values, now=T0 + 1900, since=T0 + 1300, step_seconds=300)
    assert late.history.tolist() == [True, True, True]
    assert late.current_run_hours == pytest.approx(600 / 3600)
    with pytest.raises(ValueError, match="step_seconds"):
        resample(times, values, now=T0, since=T0, step_seconds=0)


def test_summary_says_what_the_policy_saw() -> None:
    values = np.array([True] * 20 + [False] * 2 + [True] * 20 + [False] * 2, dtype=np.bool_)
    times = T0 + 360.0 * np.arange(len(values), dtype=np.float64)
    got = resample(times, values, now=float(times[-1]), since=T0, step_seconds=360)
    facts = summary("sim/r1/za", got)
    assert facts["up_fraction"] == pytest.approx(40 / 44, abs=1e-4)
    text = summary_text(facts)
    assert text == "zone sim/r1/za: 4.4 h, up 91 %, mean run 2.0 h, mean outage 0.20 h"
    assert summary_text({"zone": "z", "observed_hours": 0}) == "zone z: no history"


def test_store_keeps_changes_only_and_prunes_to_the_value_in_force(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        with store.transaction() as conn:
            assert availability_store.record(conn, KEY, T0, True, "sim-trace")
            assert not availability_store.record(conn, KEY, T0 + 10, True, "sim-trace")
            assert availability_store.record(conn, KEY, T0 + 20, False, "sim-trace")
            assert availability_store.record(conn, KEY, T0 + 30, True, "sim-trace")
            # a market source feeds this scope: skyd's own point signals stay out of it
            assert not availability_store.record_own(conn, KEY, T0 + 40, False, "skyd-preemption")
            # an offering nothing feeds learns from them
            assert availability_store.record_own(conn, "aws/x/y/z", T0, False, "skyd-preemption")
            assert availability_store.prune(conn, T0 + 25) == 1  # T0 goes, T0+20 (in force) stays
        rows = availability_store.rows_after(store.conn, 0, T0)
        assert [(r.at, r.available) for r in rows if r.scope == KEY] == [
            (T0 + 20, False),
            (T0 + 30, True),
        ]
        # of the rows before `since`, only each scope's last one is read
        later = availability_store.rows_after(store.conn, 0, T0 + 35)
        assert [(r.at, r.available) for r in later if r.scope == KEY] == [(T0 + 30, True)]
    finally:
        store.close()


class _Past:
    """A provider with a recorded past (as the sim cloud's trace)."""

    availability_step_seconds = 60.0

    def __init__(self, points: list[tuple[float, bool]]) -> None:
        self.points = points

    def availability_since(self, since: float) -> list[tuple[str, float, bool]]:
        return [(KEY, at, v) for at, v in self.points if at >= since]


def test_log_loads_the_past_once_and_tops_up_incrementally(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    clock = VirtualClock(T0 + 600)
    past = _Past([(T0, True), (T0 + 120, False), (T0 + 180, True), (T0 + 600, True)])
    log = AvailabilityLog(
        store=store, clock=clock, settings=RecoverySettings(), providers={"sim": past}
    )
    try:
        assert log.step_seconds == 60.0  # the provider's probe interval
        # the live feed recorded "now" first; the past fills in before it
        with store.transaction() as conn:
            availability_store.record(conn, KEY, T0 + 600, True, "sim-trace")
        got = log.zone_history(KEY, since=T0 - 3600)
        assert got.history.tolist() == [True, True, False] + [True] * 8
        assert got.current_run_hours == pytest.approx(420 / 3600)
        # a second start writes nothing again
        assert log.load_past(clock.now()) == 0
        clock.set(T0 + 660)
        with store.transaction() as conn:
            availability_store.record(conn, KEY, T0 + 660, False, "sim-trace")
        got = log.zone_history(KEY, since=T0 - 3600)
        assert got.history.tolist()[-2:] == [True, False]
        assert got.current_run_hours == 0.0
        assert len(log.zone_history("aws/never/seen/x", since=T0).history) == 0
    finally:
        store.close()


def test_bad_history_settings_are_refused_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "skyd.toml"
    config.write_text("[recovery]\nhistory_hours = -1.0\n")
    with pytest.raises(ConfigError, match=r"recovery.history_hours: -1.0 must be between"):
        load_settings(config)
    config.write_text("[recovery]\nhistory_hours = 720.0\nhistory_keep_days = 7.0\n")
    with pytest.raises(ConfigError, match=r"recovery.history_keep_days: 7.0 must cover"):
        load_settings(config)


def test_jobs_with_different_windows_share_one_grid_and_see_their_own_window(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    clock = VirtualClock(T0 + 3000)
    log = AvailabilityLog(
        store=store,
        clock=clock,
        settings=RecoverySettings(history_step_seconds=100.0),
        providers={},
    )
    points = [(T0, True), (T0 + 450, False), (T0 + 800, True), (T0 + 2100, False)]
    try:
        with store.transaction() as conn:
            for at, value in points:
                availability_store.record(conn, KEY, at, value, "sim-trace")
        times = np.array([t for t, _ in points])
        values = np.array([v for _, v in points])
        # the wider window first, then narrower ones (served from its grid), then wider again
        for since in (T0 - 500, T0 + 1000, T0 + 2500, T0 + 2950, T0 - 100):
            got = log.zone_history(KEY, since)
            want = resample(times, values, now=clock.now(), since=since, step_seconds=100.0)
            assert got.history.tolist() == want.history.tolist(), since
            assert got.current_run_hours == pytest.approx(want.current_run_hours), since
    finally:
        store.close()


def test_a_restarted_daemon_fills_in_what_changed_while_it_was_down(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    past = _Past([(T0, True), (T0 + 1020, False), (T0 + 1500, True)])
    try:
        with store.transaction() as conn:  # the first daemon saw T0 .. T0 + 600
            availability_store.record(conn, KEY, T0, True, "sim-trace")
        # restarted at T0 + 2000: the sim's first report of "now" lands before the past
        clock = VirtualClock(T0 + 2000)
        with store.transaction() as conn:
            availability_store.record(conn, KEY, T0 + 2000, True, "sim-trace")
        log = AvailabilityLog(
            store=store, clock=clock, settings=RecoverySettings(), providers={"sim": past}
        )
        got = log.zone_history(KEY, since=T0)
        # 60 s grid from T0 + 20 (the first grid point at or after T0, counting back from now)
        samples = got.history.tolist()
        assert samples == [True] * 17 + [False] * 8 + [True] * 9
        assert got.current_run_hours == pytest.approx(500 / 3600)
    finally:
        store.close()

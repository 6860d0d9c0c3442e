"""Availability summaries: run statistics, settled history, resampling of signals."""

from __future__ import annotations

import numpy as np
import pytest

from skyd.policy.availability import (
    availability_stats,
    resample_history,
    settled_history,
    time_of_day_hazard,
)


def test_stats_of_runs() -> None:
    history = np.array([1, 1, 0, 0, 0, 1, 1, 1, 1, 0], dtype=bool)
    stats = availability_stats(history, 0.5)
    assert stats.fraction == 0.6
    assert stats.mean_up_hours == pytest.approx(6 * 0.5 / 2)
    assert stats.mean_down_hours == pytest.approx(4 * 0.5 / 2)
    assert stats.observed_hours == 5.0
    assert availability_stats(history[:0], 0.5).observed_hours == 0.0


def test_settled_history_drops_the_current_run() -> None:
    history = np.array([1, 0, 0, 1, 1], dtype=bool)
    assert settled_history(history).tolist() == [True, False, False]
    assert len(settled_history(np.ones(4, dtype=bool))) == 0


def test_resample_holds_each_value_until_the_next() -> None:
    obs = [(100.0, True), (130.0, False), (190.0, True)]
    grid = resample_history(obs, now=200.0, step_seconds=20.0, lookback_seconds=1000.0)
    # samples at 100, 120, 140, 160, 180, 200
    assert grid.tolist() == [True, True, False, False, False, True]
    recent = resample_history(obs, now=200.0, step_seconds=20.0, lookback_seconds=40.0)
    assert recent.tolist() == [False, False, True]
    assert len(resample_history([], 5.0, 1.0, 10.0)) == 0
    with pytest.raises(ValueError, match="step_seconds"):
        resample_history(obs, 200.0, 0.0, 10.0)


def _days(pattern_by_hour: list[int], days: int) -> np.ndarray:
    """Hourly samples repeating a 24-hour pattern."""
    return np.array(pattern_by_hour * days, dtype=bool)


# Up from 00:00 to 14:00 every day, taken back at 14:00, back at 18:00.
WORKDAY = [1] * 14 + [0] * 4 + [1] * 6


def test_time_of_day_hazard_reads_the_same_hours_of_earlier_days() -> None:
    history = _days(WORKDAY, 7)
    # A run starting at 12:00 on day 8: on each earlier day the run ended at 14:00,
    # inside the 3 h window; the week's rate is one end per 20 up hours.
    at_noon = 7 * 24 + 12
    week = np.concatenate([history, _days(WORKDAY, 1)[:12]])
    noon = time_of_day_hazard(week, 1.0, at_noon, 3.0, prior_ends=0.0)
    # 7 ends over 7 × 2 up hours (12:00-14:00), against 7 over the 151 up hours
    # (before the last sample) of the whole history: ~10.8×.
    assert noon == pytest.approx((7 / 14) / (7 / 151))
    # At 02:00 no run ever ended in the next 3 h: less likely than usual.
    at_two = 7 * 24 + 2
    two = time_of_day_hazard(week[: at_two + 1], 1.0, at_two, 3.0, prior_ends=0.0)
    assert two == 0.0
    # The prior pulls both towards 1.
    shrunk = time_of_day_hazard(week, 1.0, at_noon, 3.0, prior_ends=3.0)
    assert 1.0 < shrunk < noon
    assert 0.0 < time_of_day_hazard(week, 1.0, at_two, 3.0, prior_ends=3.0) < 1.0


def test_time_of_day_hazard_is_neutral_without_evidence() -> None:
    # Less than a day of history, no end at all, or no window: no pattern to read.
    assert time_of_day_hazard(_days(WORKDAY, 1)[:20], 1.0, 20, 3.0, 3.0) == 1.0
    assert time_of_day_hazard(np.ones(200, dtype=bool), 1.0, 200, 3.0, 3.0) == 1.0
    assert time_of_day_hazard(_days(WORKDAY, 3), 1.0, 60, 0.0, 3.0) == 1.0
    assert time_of_day_hazard(_days(WORKDAY, 3), 0.0, 60, 3.0, 3.0) == 1.0
    # Runs that end at every hour alike: the ratio is 1 whatever the clock says.
    flicker = np.array([1, 0] * 24 * 5, dtype=bool)
    for at in (100, 101, 150):
        assert time_of_day_hazard(flicker, 1.0, at, 3.0, 0.0) == pytest.approx(1.0)


def test_time_of_day_hazard_of_outages_reads_their_ends() -> None:
    # Outages from 14:00 to 18:00: one beginning at 16:00 ends within 3 h every day;
    # at 06:00 spot was never down, so there is nothing to say (1, not a division by 0).
    week = _days(WORKDAY, 7)
    at_four = 7 * 24 + 16
    later = np.concatenate([week, _days(WORKDAY, 1)[:16]])
    four = time_of_day_hazard(later, 1.0, at_four, 3.0, prior_ends=0.0, up=False)
    # 7 ends over 7 × 2 down hours (16:00-18:00) against 7 over 7 × 4 (+2 today, before
    # the last sample): 2 × 30/28.
    assert four == pytest.approx((7 / 14) / (7 / 29))
    assert time_of_day_hazard(later[: 7 * 24 + 7], 1.0, 7 * 24 + 6, 3.0, 0.0, up=False) == 1.0
    # The same as the up-run hazard of the inverted series.
    assert four == time_of_day_hazard(~later, 1.0, at_four, 3.0, 0.0)

"""Availability summaries: run statistics, settled history, resampling of signals."""

from __future__ import annotations

import numpy as np
import pytest

from skyd.policy.availability import availability_stats, resample_history, settled_history


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

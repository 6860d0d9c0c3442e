"""kill -9 chaos with a churning spot market (#12): skyd killed 30 times while local and spot
jobs run and every sim zone loses capacity in turn; once the market settles, nothing is
lost, stuck, run twice at once or leaked, and the ledger matches the instances' lives.
`python -m bench.chaos --kills 200 --json` is the long run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import run_chaos

KILLS = 30


@pytest.mark.timeout(300)
def test_kill_9_chaos_with_a_churning_spot_market_loses_nothing(tmp_path: Path) -> None:
    report = run_chaos(tmp_path, KILLS, seed=7)
    assert report.kills == KILLS
    assert report.submitted >= 12
    assert report.preemptions > 0  # the market churned under running spot jobs
    assert report.lost == []
    assert report.stuck == []
    assert report.not_succeeded == {}
    assert report.duplicates == []
    assert report.leaked_processes == []
    assert report.leaked_instances == []
    assert report.ledger_mismatches == {}
    assert report.clean

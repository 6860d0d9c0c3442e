"""kill -9 of the daemon at random points of cloud jobs' lives (launch sent, launched but not
recorded, booting, running, terminating) against the fake EC2 and Compute Engine: nothing
lost or stuck, every job done, no instance left in a fake, no launch doubled, and ledger
seconds equal to instance lifetimes. The long run is `python -m bench.cloud_chaos`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cloud_chaos import run_cloud_chaos


@pytest.mark.timeout(400)
def test_kill_9_through_cloud_jobs_lives_leaves_nothing_behind(tmp_path: Path) -> None:
    result = run_cloud_chaos(tmp_path, kills=12, jobs=6, seed=7)
    assert result["kills"] == 12
    assert result["lost"] == [] and result["stuck"] == [], result
    assert result["not_succeeded"] == {}, result
    assert result["leaked_instances"] == [], result
    assert result["duplicate_launches"] == 0, result
    assert result["ledger_mismatches"] == {}, result
    assert result["clean"], result

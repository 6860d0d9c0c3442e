"""kill -9 of the daemon at chosen points of cloud jobs' lives (launch sent, launched but not
recorded, booting, running, terminating) against the fake EC2, Compute Engine and Azure,
whose VMs are real sshd's: 50 kills, then nothing lost or stuck, every job SUCCEEDED, no
instance left in any fake, no launch doubled, and ledger seconds equal to every instance's
lifetime. The seed is printed (and taken from SKYD_CHAOS_SEED) so a failure reproduces with
`python -m bench.cloud_chaos --kills 50 --seed N`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cloud_chaos import POINTS, run_cloud_chaos

KILLS = 50


@pytest.mark.timeout(900)
def test_50_kills_through_cloud_jobs_lives_leave_nothing_behind(tmp_path: Path) -> None:
    seed = int(os.environ.get("SKYD_CHAOS_SEED", "13"))
    print(f"cloud chaos seed {seed} (SKYD_CHAOS_SEED={seed} to repeat)")
    result = run_cloud_chaos(tmp_path, kills=KILLS, jobs=6, seed=seed, settle_seconds=240)
    print({k: result[k] for k in ("kills_by_point", "submitted", "vms_created", "seconds")})
    assert result["kills"] == KILLS
    # each point got a tenth of the kills aimed at it; every one of them was hit
    assert all(result["kills_by_point"].get(p, 0) >= 1 for p in POINTS), result
    assert result["clouds"] == ["aws", "azure", "gcp"], result
    assert result["lost"] == [] and result["stuck"] == [], result
    assert result["not_succeeded"] == {}, result
    assert result["leaked_instances"] == [] and result["leaked_processes"] == [], result
    assert result["duplicate_launches"] == 0, result
    assert result["ledger_mismatches"] == {}, result
    assert result["clean"], result

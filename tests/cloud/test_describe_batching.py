"""One describe per (provider, region) per tick, whatever the number of running jobs."""

from __future__ import annotations

from bench.cloud_calls import measure


async def test_running_jobs_cost_one_describe_per_provider_region_per_tick() -> None:
    result = await measure(jobs=120, ticks=3)
    assert result["running_after"] == 120  # every job still watched as RUNNING
    assert result["describe_calls_per_tick"] == [4, 4, 4]  # 2 providers x 2 regions
    assert result["baseline_calls_per_tick"] == 120

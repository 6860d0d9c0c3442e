"""Budgets that hold, through real daemons (#18): a running job is stopped or held within one
accrual tick of its budget, a held job is not started again, every job and cluster belongs to
a known project, and a cluster goes through the same admission and is charged to its owner and
project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.budgets import measure, write_trace
from skyctl.client import ApiError, DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until


@pytest.mark.parametrize("policy", ["stop", "hold"])
def test_a_spent_budget_stops_or_holds_the_running_job_within_one_tick(
    tmp_path: Path, policy: str
) -> None:
    # $360/h with accrual every second: one tick is $0.10, the budget ten ticks
    result = measure(tmp_path, at_budget=policy, accrual=1.0, budget=1.0, price=360.0)
    assert result["state"] == ("FAILED" if policy == "stop" else "RECOVERING")
    assert result["past_budget_ticks"] <= 1.0, result
    assert not result["started_again_while_spent"], result
    assert "budget" in result["reason"]
    [line] = result["budget_rows"]
    assert line["scope"] == "project:p1"


def test_projects_are_known_and_clusters_are_admitted_and_charged_like_jobs(
    tmp_path: Path,
) -> None:
    settings = settings_for_tests(tmp_path)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(tmp_path / "trace", 36.0)
    settings.sim.provisioning_delay_seconds = 0.0
    settings.local.slots = 0
    settings.accounting.accrual_interval_seconds = 0.5
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            client.request("POST", "/v1/projects/thesis", body={"monthly_budget": 0.05})
            # no project: the default one
            job = client.submit_task("run: echo hi\n", str(tmp_path), None)
            assert job["project"] == "default"
            # a typo is refused with did-you-mean, and nothing is stored
            with pytest.raises(ApiError, match="did you mean 'thesis'") as info:
                client.submit_task("project: thesys\nrun: echo hi\n", str(tmp_path), None)
            assert (info.value.status, info.value.field) == (400, "project")
            assert len(client.request("GET", "/v1/jobs", query={"all": 1})["jobs"]) == 1
            # a cluster that would pass the project's budget is refused like a job
            task = "project: thesis\nresources:\n  accelerators: V100:1\nrun: echo up\n"
            with pytest.raises(ApiError, match="cluster big is not launched") as refused:
                client.request(
                    "POST",
                    "/v1/clusters",
                    body={"name": "big", "task_yaml": task, "base_dir": str(tmp_path)},
                )
            assert refused.value.code == "over_budget"
            assert client.request("GET", "/v1/clusters")["clusters"] == []
            # one that fits is launched, and its instances charge its owner and project
            client.request("POST", "/v1/projects/thesis", body={"monthly_budget": 100})
            launched = client.request(
                "POST",
                "/v1/clusters",
                body={"name": "dev", "task_yaml": task, "base_dir": str(tmp_path)},
            )
            assert launched["job"]["project"] == "thesis"

            def charged() -> list[dict[str, object]] | None:
                rows = client.request("GET", "/v1/costs", query={"by": "project"})["rows"]
                return rows if any(r["key"] == "thesis" for r in rows) else None

            rows = wait_until(charged, timeout=60)
            client.request("POST", "/v1/clusters/dev/down", body={"force": True})
    finally:
        assert daemon.stop() == 0
    assert all(r["key"] is not None and r["name"] != "(none)" for r in rows), rows
    store = json.dumps(rows)
    assert "thesis" in store

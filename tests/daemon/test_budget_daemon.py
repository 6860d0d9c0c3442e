"""Budgets through the daemon: a job that would overspend its project is held PENDING with
reason `budget`; raising the budget lets it run; costs and credits answer."""

from __future__ import annotations

import json
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until

TASK = """\
name: priced
project: thesis
resources:
  accelerators: V100:1
estimated_runtime: 2h
run: echo trained
"""


def write_trace(root: Path) -> Path:
    root.mkdir()
    lines = ["date,availability"] + [f"2026-01-01 00:00:{i:02d},1" for i in range(30)]
    (root / "z.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "name": "always",
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": 3.06,
        "zones": {"z": {"region": "r1", "availability_file": "z.csv", "spot_price": 1.0}},
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_a_binding_budget_holds_the_job_until_it_is_raised(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.sim.enabled = True
    settings.sim.traces = write_trace(tmp_path / "trace")
    settings.sim.provisioning_delay_seconds = 0.0
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            client.request("POST", "/v1/projects/thesis", body={"monthly_budget": "1.00"})
            job_id = int(client.submit_task(TASK, str(tmp_path), None)["id"])

            def held_for_budget() -> dict[str, object] | None:
                job = client.get_job(job_id)
                events = job["events"]
                held = any(e["kind"] == "waiting" and "budget" in e["reason"] for e in events)
                return job if held else None

            held = wait_until(held_for_budget)
            assert held["state"] == "PENDING"  # 2 h × $3.06/h on demand > $1.00
            client.request("POST", "/v1/projects/thesis", body={"monthly_budget": "100.00"})
            done = wait_until(lambda: (j := client.get_job(job_id))["state"] == "SUCCEEDED" and j)
            costs = client.request("GET", "/v1/costs", query={"by": "project"})
            credits = client.request("GET", "/v1/credits")
    finally:
        assert daemon.stop() == 0
    assert done["placement"]["cloud"] == "sim"
    assert costs["currency"] == "USD" and "rows" in costs
    assert "pools" in credits


def test_a_cpu_job_waits_for_a_free_local_slot_rather_than_pay(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    settings.local.slots = 1
    settings.sim.enabled = True  # a paid cloud that could run it right away
    settings.sim.traces = write_trace(tmp_path / "trace")
    gate = tmp_path / "gate"
    daemon = DaemonThread(settings).start()
    try:
        with DaemonClient(daemon.socket_path) as client:
            first = int(
                client.submit_task(
                    f"run: while [ ! -f {gate} ]; do sleep 0.05; done\n", str(tmp_path), None
                )["id"]
            )
            wait_until(lambda: client.get_job(first)["state"] == "RUNNING")
            second = int(client.submit_task("run: echo cheap\n", str(tmp_path), None)["id"])

            def waiting_for_local() -> dict[str, object] | None:
                job = client.get_job(second)
                waits = [e for e in job["events"] if e["kind"] == "waiting"]
                return job if any("free capacity on local" in e["reason"] for e in waits) else None

            assert wait_until(waiting_for_local)["state"] == "PENDING"
            gate.touch()
            done = wait_until(lambda: (j := client.get_job(second))["state"] == "SUCCEEDED" and j)
    finally:
        assert daemon.stop() == 0
    assert done["placement"]["cloud"] == "local"  # it waited for the free slot

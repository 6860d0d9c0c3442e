"""Pipelines (SkyPilot's multi-document task files) through skyctl and a real daemon: stages
run one after another, each only once the one before SUCCEEDED; a failed stage stops the rest;
cancelling the pipeline cancels every stage; queue shows the pipeline and its stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, wait_until
from tests.daemon_calls import JsonObject, run_skyctl

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def _all_ended(client: DaemonClient, ids: list[int]) -> list[JsonObject]:
    def ended() -> list[JsonObject] | None:
        jobs = [client.get_job(job_id) for job_id in ids]
        return jobs if all(job["state"] in TERMINAL for job in jobs) else None

    return wait_until(ended, timeout=60)


def _started_at(job: dict[str, object]) -> float:
    value = job["started_at"]
    assert isinstance(value, float)
    return value


def test_stages_run_in_order_each_after_the_previous_succeeded(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "chain.yaml").write_text(
        "name: chain\n---\nname: make\nrun: echo one; sleep 0.3\n---\nname: use\nrun: echo two\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "chain.yaml")
    assert code == 0, err
    ids = [int(line) for line in out.split()]
    assert len(ids) == 2
    code, queue, _ = run_skyctl(daemon.socket_path, "queue", "--json")
    listed = {job["id"]: job for job in json.loads(queue)}
    assert listed[ids[1]]["pipeline"] == {"id": ids[0], "name": "chain", "stage": 2, "stages": 2}
    code, table, _ = run_skyctl(daemon.socket_path, "queue", "--all")
    assert "make [chain 1/2]" in table and "use [chain 2/2]" in table
    first, second = _all_ended(client, ids)
    assert (first["state"], second["state"]) == ("SUCCEEDED", "SUCCEEDED")
    assert _started_at(second) >= float(first["ended_at"])
    reasons = [event["reason"] for event in second["events"]]
    assert any(f"waiting for stage 1 (job {ids[0]}) of pipeline chain" in r for r in reasons)
    code, shown, _ = run_skyctl(daemon.socket_path, "show", str(ids[1]))
    assert f"stage 2/2 of pipeline chain (#{ids[0]})" in shown


def test_a_failed_stage_cancels_the_rest(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.yaml").write_text("run: exit 3\n---\nrun: echo never\n---\nrun: echo never\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "p.yaml")
    assert code == 0, err
    ids = [int(line) for line in out.split()]
    jobs = _all_ended(client, ids)
    assert [job["state"] for job in jobs] == ["FAILED", "CANCELLED", "CANCELLED"]
    assert jobs[1]["started_at"] is None and jobs[2]["started_at"] is None


def test_cancelling_the_pipeline_cancels_every_stage(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.yaml").write_text("name: p\n---\nrun: sleep 60\n---\nrun: echo never\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_skyctl(daemon.socket_path, "submit", "p.yaml")
    assert code == 0, err
    ids = [int(line) for line in out.split()]
    code, _, err = run_skyctl(daemon.socket_path, "cancel", str(ids[0]))
    assert code == 0, err
    assert [job["state"] for job in _all_ended(client, ids)] == ["CANCELLED", "CANCELLED"]


def test_a_stage_that_can_never_run_refuses_the_whole_pipeline(
    daemon: DaemonThread, client: DaemonClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p.yaml").write_text(
        "run: echo ok\n---\nname: big\nresources: {accelerators: H100:8}\nrun: echo no\n"
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_skyctl(daemon.socket_path, "submit", "p.yaml")
    assert code == 1 and "stage 2 (big):" in err
    assert client.list_jobs(include_terminal=True)[0] == []

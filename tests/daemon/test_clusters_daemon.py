"""Interactive clusters through the real daemon: launch, exec (nothing launched), down."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from skyctl.__main__ import main as skyctl
from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, wait_until
from tests.daemon_calls import JsonObject

REPO = Path(__file__).resolve().parents[2]


def _run(daemon: DaemonThread, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = skyctl(["--socket", daemon.socket_path, *args])
    return code, out.getvalue()


def _job_done(client: DaemonClient, job_id: int) -> JsonObject:
    def done() -> JsonObject | None:
        job = client.get_job(job_id)
        return job if job["state"] in ("SUCCEEDED", "FAILED") else None

    return wait_until(done)


def test_launch_exec_and_down_a_cluster(daemon: DaemonThread, client: DaemonClient) -> None:
    code, text = _run(
        daemon, "launch", "-c", "dev", str(REPO / "examples" / "hello.yaml"), "--json"
    )
    assert code == 0, text
    first_job = int(json.loads(text)["job"]["id"]) if "job" in json.loads(text) else None

    def listing(*flags: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = json.loads(_run(daemon, "clusters", *flags, "--json")[1])[
            "clusters"
        ]
        return rows

    clusters = wait_until(
        lambda: rows if (rows := listing()) and rows[0]["state"] == "UP" else None
    )
    assert clusters[0]["name"] == "dev"
    if first_job is not None:
        assert _job_done(client, first_job)["state"] == "SUCCEEDED"

    code, text = _run(daemon, "exec", "dev", "-d", "--", "sh", "-c", "echo on $SKYD_CLUSTER")
    assert code == 0, text
    job_id = int(text.strip())
    job = _job_done(client, job_id)
    assert job["state"] == "SUCCEEDED"
    log = b"".join(client.job_logs(job_id, follow=False)).decode()
    assert "on dev" in log
    assert not any(e["kind"] == "launched" for e in job["events"])  # ran on the cluster
    states = [e["state"] for e in job["events"] if e["state"]]
    assert states == ["PENDING", "PROVISIONING", "SETTING_UP", "RUNNING", "SUCCEEDED"]

    code, text = _run(daemon, "down", "dev", "--yes")
    assert code == 0, text
    assert [r["state"] for r in listing("--all") if r["name"] == "dev"] == ["DOWN"]

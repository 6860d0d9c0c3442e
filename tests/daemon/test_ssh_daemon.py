"""A job placed on a lab machine (`ssh` provider) runs there over SSH, through the daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests
from skyd.testing.ssh_server import FakeSshServer
from tests.daemon.lab_box_hosts import ssh_host_entry
from tests.daemon_calls import wait_ended

TASK = """\
name: on-the-lab-box
resources:
  cloud: ssh
setup: echo setup on $(hostname >/dev/null; echo box)
run: |
  echo rank=$SKYD_NODE_RANK nodes=$SKYD_NUM_NODES
  exit 0
"""


async def test_job_runs_on_a_lab_machine_over_ssh(tmp_path: Path) -> None:
    box = FakeSshServer(tmp_path / "box", name="box")
    await box.start()
    settings = settings_for_tests(tmp_path)
    settings.ssh = {"hosts": [ssh_host_entry(box, max_jobs=2)]}
    daemon = DaemonThread(settings)
    await asyncio.to_thread(daemon.start)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(client.submit_task, TASK, str(tmp_path), None)
            job_id = int(job["id"])
            final = await asyncio.to_thread(wait_ended, client, job_id, 90)
            log = b"".join(
                await asyncio.to_thread(lambda: list(client.job_logs(job_id, follow=False)))
            ).decode()
    finally:
        await asyncio.to_thread(daemon.stop)
        await box.aclose()
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["placement"]["provider"] == "ssh" and final["placement"]["zone"] == "box"
    assert "setup on box" in log and "rank=0 nodes=1" in log

"""A job placed on a lab machine (`ssh` provider) runs there over SSH, through the daemon."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.ssh_server import FakeSshServer

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
    settings.ssh = {
        "hosts": [
            {
                "name": "box",
                "host": box.host,
                "port": box.port,
                "user": box.user,
                "key_path": str(box.client_key_path),
                "known_hosts": str(box.known_hosts_path),
                "cpus": 8,
                "memory_gib": 32,
                "max_jobs": 2,
                "python": sys.executable,
            }
        ]
    }
    daemon = DaemonThread(settings)
    await asyncio.to_thread(daemon.start)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(client.submit_task, TASK, str(tmp_path), None)
            job_id = int(job["id"])
            final = await asyncio.to_thread(
                wait_until,
                lambda: (
                    (j := client.get_job(job_id))["state"]
                    in ("SUCCEEDED", "FAILED", "FAILED_SETUP")
                    and j
                ),
                timeout=90,
            )
            log = b"".join(
                await asyncio.to_thread(lambda: list(client.job_logs(job_id, follow=False)))
            ).decode()
    finally:
        await asyncio.to_thread(daemon.stop)
        await box.aclose()
    assert final["state"] == "SUCCEEDED", (final, log)
    assert final["placement"]["provider"] == "ssh" and final["placement"]["zone"] == "box"
    assert "setup on box" in log and "rank=0 nodes=1" in log

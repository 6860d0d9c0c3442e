"""A 2-node job on the lab's ssh pool runs one rank on each of two machines, through the
daemon: each rank sees its own rank and both hosts' addresses; rank 1's lines come back
with `?node=1`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests, wait_until
from skyd.testing.ssh_server import FakeSshServer

TASK = """\
name: gang
num_nodes: 2
resources:
  cloud: ssh
setup: echo setup-on-$SKYPILOT_NODE_RANK
run: |
  ips=$(echo "$SKYPILOT_NODE_IPS" | paste -sd,)
  echo "rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES ips=$ips"
"""


def _host(box: FakeSshServer) -> dict[str, Any]:
    return {
        "name": box.name,
        "host": box.host,
        "port": box.port,
        "user": box.user,
        "key_path": str(box.client_key_path),
        "known_hosts": str(box.known_hosts_path),
        "cpus": 8,
        "memory_gib": 32,
        "max_jobs": 1,
        "python": sys.executable,
    }


async def test_two_node_job_runs_a_rank_on_each_lab_machine(tmp_path: Path) -> None:
    boxes = [FakeSshServer(tmp_path / n, name=n) for n in ("box-a", "box-b")]
    for box in boxes:
        await box.start()
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.ssh = {"hosts": [_host(b) for b in boxes]}
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

            def log(node: int) -> str:
                return b"".join(client.job_logs(job_id, follow=False, node=node)).decode()

            head, other = await asyncio.to_thread(log, 0), await asyncio.to_thread(log, 1)
            every = await asyncio.to_thread(
                lambda: b"".join(client.job_logs(job_id, follow=False, all_nodes=True)).decode()
            )
    finally:
        await asyncio.to_thread(daemon.stop)
        for box in boxes:
            await box.aclose()
    assert final["state"] == "SUCCEEDED", (final, head)
    ips = ",".join(b.host for b in boxes)
    assert f"rank=0 n=2 ips={ips}" in head and "setup-on-0" in head, head
    assert f"rank=1 n=2 ips={ips}" in other and "setup-on-1" in other, other
    assert not other.startswith("(node"), other
    assert "rank=1" not in head and "setup-on-1" not in head, head  # rank 0 by default
    assert f"rank=0 n=2 ips={ips}" in every and f"(node 1) rank=1 n=2 ips={ips}" in every, every
    launched = next(e for e in final["events"] if (e.get("data") or {}).get("instances"))
    assert [i.split("-")[2] for i in launched["data"]["instances"]] == ["a", "b"], launched

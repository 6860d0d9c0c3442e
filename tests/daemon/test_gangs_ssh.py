"""A 2-node job on the lab's ssh pool runs one rank on each of two machines, through the
daemon: each rank sees its own rank and both hosts' addresses; rank 1's lines come back
with `?node=1`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests
from skyd.testing.ssh_server import FakeSshServer
from tests.daemon.lab_box_hosts import ssh_host_entry
from tests.daemon_calls import wait_ended

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


async def test_two_node_job_runs_a_rank_on_each_lab_machine(tmp_path: Path) -> None:
    boxes = [FakeSshServer(tmp_path / n, name=n) for n in ("box-a", "box-b")]
    for box in boxes:
        await box.start()
    settings = settings_for_tests(tmp_path)
    settings.local.enabled = False
    settings.ssh = {"hosts": [ssh_host_entry(b, max_jobs=1) for b in boxes]}
    daemon = DaemonThread(settings)
    await asyncio.to_thread(daemon.start)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(client.submit_task, TASK, str(tmp_path), None)
            job_id = int(job["id"])
            final = await asyncio.to_thread(wait_ended, client, job_id, 90)

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

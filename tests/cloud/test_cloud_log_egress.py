"""A job on a fake AWS VM (a real sshd on loopback) prints its output; the daemon copies the
VM's job log home and charges the bytes it read at egress.csv's internet rate, as data
transfer attributed to the job, which `skyctl costs` shows under DATA OUT."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.accounting.transfers import transfer_micros
from skyd.store import open_store
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import settings_for_tests, submit_and_wait
from tests.cloud.test_cloud_checkpoint_egress import ENDED, skyctl

OUTPUT = 600_000  # bytes the job prints
AWS_PER_GB = 90_000  # catalogs/egress.csv
TASK = f"""\
name: egress-log
resources:
  cloud: aws
  region: us-east-1
  instance_type: c5.large
run: head -c {OUTPUT} /dev/zero | tr '\\0' x
"""
# what the VM's job.log holds: the shim's lines around the run's output (the daemon adds
# lines of its own to the local copy, which do not cross the network)
FROM_NODE = re.compile(rb"--- skyd: run started at [^\n]*---\n.*--- skyd: run exited[^\n]*\n", re.S)


async def test_the_job_log_read_off_an_aws_vm_is_charged_as_egress(tmp_path: Path) -> None:
    async with CloudWorld(tmp_path / "world", boot_delay_s=1.0) as world:
        settings = world.settings(settings_for_tests(tmp_path))
        async with world.daemon(settings) as daemon:
            socket = daemon.socket_path
            with DaemonClient(socket) as client:
                final = await submit_and_wait(client, TASK, tmp_path, until=ENDED, wait_s=90)
            job_id = int(final["id"])
            assert final["state"] == "SUCCEEDED", final
            report = await asyncio.to_thread(skyctl, socket, "costs", "--by", "job", "--json")
            table = await asyncio.to_thread(_costs_table, socket)
    local_log = (settings.state_dir / "jobs" / str(job_id) / "job.log").read_bytes()
    copied = FROM_NODE.search(local_log)
    assert copied is not None and b"x" * OUTPUT in copied.group()
    pulled = len(copied.group())  # the bytes read off the VM
    store = open_store(settings.state_dir, lock=False)
    try:
        rows = store.conn.execute(
            "SELECT job_id, owner_uid, cloud, region, bytes, per_gb_micros, amount_micros,"
            " transfer_key FROM ledger WHERE kind = 'transfer' ORDER BY seq"
        ).fetchall()
    finally:
        store.close()
    assert rows and all(r["transfer_key"].startswith("log:") for r in rows)
    assert len(rows) <= 2  # batched: not a row per read
    assert {tuple(r)[:4] for r in rows} == {(job_id, os.getuid(), "aws", "us-east-1")}
    assert sum(r["bytes"] for r in rows) == pulled
    amount = sum(r["amount_micros"] for r in rows)
    assert amount == sum(transfer_micros(r["bytes"], AWS_PER_GB) for r in rows) > 0
    line = next(r for r in report["rows"] if r["key"] == job_id)
    assert (line["data_transfer_bytes"], line["data_transfer_micros"]) == (pulled, amount)
    # the table has the column only when something was charged for data (0.0006 GB here)
    header, job_line = table.splitlines()[1:3]
    assert "DATA OUT" in header and " / 0.00 GB " in job_line, table


def _costs_table(socket: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "skyctl", "--socket", socket, "costs", "--by", "job"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout

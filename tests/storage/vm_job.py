"""One task through a real daemon on a CloudWorld's fake VMs: its end, log and `show` views."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import settings_for_tests, wait_until
from tests.daemon_calls import ENDED, run_skyctl


async def run_task(
    world: CloudWorld, tmp_path: Path, task: str, secrets: dict[str, str]
) -> tuple[Any, str, Any, str]:
    """Submit `task` and wait for its end: (job, log, `show --json`, `show` text)."""
    settings = world.settings(settings_for_tests(tmp_path))
    daemon = await world.start_daemon(settings)
    try:
        with DaemonClient(daemon.socket_path) as client:
            job = await asyncio.to_thread(
                client.submit_task, task, str(tmp_path), None, None, {"secrets": secrets}
            )
            job_id = int(job["id"])
            final = await asyncio.to_thread(
                wait_until,
                lambda: (j := client.get_job(job_id))["state"] in ENDED and j,
                timeout=120,
                error=lambda: client.get_job(job_id),
            )
            log = b"".join(
                await asyncio.to_thread(lambda: list(client.job_logs(job_id, follow=False)))
            ).decode()
            code, shown, _ = await asyncio.to_thread(
                run_skyctl, daemon.socket_path, "show", str(job_id), "--json"
            )
            assert code == 0
            code, text, _ = await asyncio.to_thread(
                run_skyctl, daemon.socket_path, "show", str(job_id)
            )
            assert code == 0
            return final, log, json.loads(shown), text
    finally:
        await asyncio.to_thread(daemon.stop)


def write_back_rows(state_dir: Path, job_id: int) -> list[tuple[Any, ...]]:
    """(bytes, amount_micros, transfer_key) of the job's bucket write-back charges."""
    conn = sqlite3.connect(f"file:{state_dir / 'skyd.db'}?mode=ro", uri=True)
    try:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT bytes, amount_micros, transfer_key FROM ledger WHERE kind = 'transfer'"
                " AND job_id = ? AND transfer_key LIKE 'bucket:%:out:%' ORDER BY seq",
                (job_id,),
            )
        ]
    finally:
        conn.close()


def gcp_mount_task(endpoint: str, bucket: str, run: str) -> str:
    """A GCP task whose `run` writes into ~/out, an S3 bucket (at `endpoint`) mounted MOUNT."""
    # MOUNT: a FUSE mount where the VM's login may use FUSE, else (here) copied before
    # setup and written back when the job ends
    body = textwrap.indent(run, "  ")
    return f"""\
resources:
  cloud: gcp
  zone: us-central1-a
  instance_type: n2-standard-8
envs:
  AWS_ENDPOINT_URL: {endpoint}
file_mounts:
  ~/out:
    source: s3://{bucket}
    mode: MOUNT
run: |
{body}
"""

"""A job on a fake AWS VM (a real sshd on loopback) writes a checkpoint; the daemon pulls it
home and charges the bytes that left the cloud at egress.csv's internet rate: one
data-transfer row on the ledger, attributed to the job, shown by `skyctl costs`, counted by
the project's budget."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from skyctl.client import DaemonClient
from skyd.accounting import Accountant, AccountingSettings
from skyd.accounting.transfers import DAEMON_HOST
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.events import EventBus
from skyd.optimizer.egress import find_egress_table
from skyd.store import open_store
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import settings_for_tests, submit_and_wait

ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")

CHECKPOINT_BYTES = 2_000_000
TASK = f"""\
name: egress-checkpoint
resources:
  cloud: aws
  region: us-east-1
  instance_type: c5.large
setup: |
  mkdir -p "$SKYD_CHECKPOINT_DIR"
  head -c {CHECKPOINT_BYTES} /dev/zero > "$SKYD_CHECKPOINT_DIR/model.bin"
run: echo trained
"""


def skyctl_text(socket: str, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "skyctl", "--socket", socket, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def skyctl(socket: str, *argv: str) -> Any:
    return json.loads(skyctl_text(socket, *argv))


def tar_stream_bytes(tmp_path: Path) -> int:
    """What `tar -c` (the node's side of a pull) sends for the same checkpoint directory."""
    copy = tmp_path / "checkpoint-copy"
    copy.mkdir()
    (copy / "model.bin").write_bytes(b"\0" * CHECKPOINT_BYTES)
    packed = subprocess.run(
        ["tar", "-c", "-f", "-", "-C", str(copy), "."], capture_output=True, check=True
    )
    return len(packed.stdout)


async def test_a_checkpoint_pulled_from_aws_is_charged_as_egress(tmp_path: Path) -> None:
    async with CloudWorld(tmp_path / "world", boot_delay_s=1.0) as world:
        await _run(world, tmp_path)


async def _run(world: CloudWorld, tmp_path: Path) -> None:
    settings = world.settings(settings_for_tests(tmp_path))
    async with world.daemon(settings) as daemon:
        socket = daemon.socket_path
        await asyncio.to_thread(
            skyctl, socket, "projects", "set", "default", "--budget", "50", "--json"
        )
        with DaemonClient(socket) as client:
            final = await submit_and_wait(client, TASK, tmp_path, until=ENDED, wait_s=90)
        job_id = int(final["id"])
        assert final["state"] == "SUCCEEDED", final
        report = await asyncio.to_thread(skyctl, socket, "costs", "--by", "job", "--json")
        shown = await asyncio.to_thread(skyctl, socket, "show", str(job_id), "--json")
        text = await asyncio.to_thread(skyctl_text, socket, "show", str(job_id))
    # the checkpoint came home
    local = settings.state_dir / "checkpoints" / str(job_id) / "model.bin"
    assert local.stat().st_size == CHECKPOINT_BYTES
    sent = tar_stream_bytes(tmp_path)
    assert CHECKPOINT_BYTES < sent < CHECKPOINT_BYTES + 20_480
    rate = find_egress_table(candidate_dirs()).rates["aws"].internet_micros
    assert rate == 90_000  # catalogs/egress.csv: $0.09/GB out of AWS
    amount = (sent * rate + 500_000_000) // 1_000_000_000
    row = next(r for r in report["rows"] if r["key"] == job_id)
    store = open_store(settings.state_dir, lock=False)
    try:
        # the job's log read off the VM is charged too (tests/cloud/test_cloud_log_egress.py)
        log_bytes, log_amount = store.conn.execute(
            "SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(amount_micros), 0) FROM ledger"
            " WHERE kind = 'transfer' AND transfer_key LIKE 'log:%'"
        ).fetchone()
        assert log_bytes > 0
        assert (row["data_transfer_bytes"], row["data_transfer_micros"]) == (
            sent + log_bytes,
            amount + log_amount,
        )
        assert row["amount_micros"] >= amount + log_amount
        # `skyctl show` says what left the cloud for the job, by what moved
        data_out = {d["what"]: d for d in shown["data_out"]}
        assert sorted(data_out) == ["checkpoint", "log"]
        checkpoint = data_out["checkpoint"]
        assert (checkpoint["bytes"], checkpoint["transfers"]) == (sent, 1)
        assert round(checkpoint["cost"] * 1_000_000) == amount
        assert (data_out["log"]["bytes"], round(data_out["log"]["cost"] * 1e6)) == (
            log_bytes,
            log_amount,
        )
        line = next(x for x in text.splitlines() if x.strip().startswith("data out"))
        assert f"checkpoints {sent / 1e6:.1f} MB in 1 pull, ${amount / 1e6:.6f}".rstrip("0") in line
        assert "; logs " in line
        ledger = store.conn.execute(
            "SELECT job_id, owner_uid, project, provider, cloud, region, bytes, per_gb_micros,"
            " amount_micros FROM ledger WHERE kind = 'transfer'"
            " AND transfer_key LIKE 'checkpoint:%'"
        ).fetchall()
        vm = store.conn.execute(
            "SELECT instance_id FROM instances WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
        assert [tuple(r) for r in ledger] == [
            (job_id, os.getuid(), "default", "aws", "aws", "us-east-1", sent, rate, amount)
        ]
        charged = store.conn.execute(
            "SELECT DISTINCT instance_id FROM ledger WHERE kind = 'transfer'"
        ).fetchall()
        assert [r[0] for r in charged] == [vm]
        assert rate == find_egress_table(candidate_dirs()).per_gb_micros(
            "aws", "us-east-1", DAEMON_HOST, ""
        )
        books = Accountant(
            store=store,
            clock=VirtualClock(time.time()),  # this month
            bus=EventBus(),
            settings=AccountingSettings(),
        )
        spent = books.enforcer.standing().spent_by_project["default"]
        instance_part = (
            store.conn.execute(
                "SELECT COALESCE(SUM(amount_micros), 0) FROM ledger WHERE kind = 'instance'"
            ).fetchone()[0]
            + store.conn.execute(
                "SELECT COALESCE(SUM(open_amount), 0) FROM accrual_progress"
            ).fetchone()[0]
        )
        assert spent == instance_part + amount + log_amount  # the budget counts transfers
        line = next(b for b in books.budgets()["budgets"] if b["scope"] == "project:default")
        assert round(line["spent"] * 1_000_000) == spent
    finally:
        store.close()

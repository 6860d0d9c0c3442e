"""kill -9 of a process that pulls a checkpoint from a node and charges its egress: the pull is
charged exactly once whether the process dies just after the charge commits (before the pull
is marked done) or just before it; the restarted process pulls again and the books agree.
A meter that fails is asked again at the next sync, with no second pull (no second egress)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import egress_pull_child as child
import pytest
from ssh_helpers import ProviderFactory, until_over
from test_ssh_runner import command, nodes_on

from skyd.accounting.transfers import transfer_micros
from skyd.model import Instance, InstanceState, RunPhase
from skyd.providers.ssh import SshConnections
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_state import CHECKPOINT_FILE
from skyd.store import Store, open_store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.testing.ssh_server import FakeSshServer

CHILD = Path(child.__file__)
SIZE = 1_500_000
AWS_PER_GB = 90_000  # catalogs/egress.csv


async def run_child(state_dir: Path, attempt: Path, when: str) -> str:
    """Run the child; kill -9 it where it stops. Returns what it printed last."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(state_dir),
        str(attempt),
        when,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
    if line == "stopped":
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    else:
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    return line


def record_job_on_aws(store: Store, instance_id: str) -> int:
    job, _ = job_store.insert_job(
        store, name="train", owner_uid=1000, owner_name="u1000", project="nlp", priority=0,
        spec_json="{}", base_dir="/", deadline=None, now=child.AT - 600,
    )  # fmt: skip
    with store.transaction() as conn:
        instance_store.insert_instance(
            conn,
            Instance(
                instance_id=instance_id, provider="aws", cloud="aws", region="us-east-1",
                zone="us-east-1a", instance_type="c5.large", spot=False,
                state=InstanceState.RUNNING,
            ),
            job_id=job.id, attempt=1, client_token=f"t-{instance_id}",
            hourly_price_micros=85_000, now=child.AT - 600,
        )  # fmt: skip
    return job.id


def transfer_books(state_dir: Path) -> tuple[list[tuple[object, ...]], int, tuple[int, int]]:
    store = open_store(state_dir, lock=False)
    try:
        rows = store.conn.execute(
            "SELECT job_id, project, cloud, bytes, amount_micros FROM ledger"
            " WHERE kind = 'transfer'"
        ).fetchall()
        cost = store.conn.execute("SELECT SUM(cost_micros) FROM jobs").fetchone()[0]
        daily = store.conn.execute(
            "SELECT COALESCE(SUM(transfer_bytes), 0), COALESCE(SUM(transfer_micros), 0)"
            " FROM cost_daily"
        ).fetchone()
        return [tuple(r) for r in rows], int(cost), (int(daily[0]), int(daily[1]))
    finally:
        store.close()


async def ended_attempt(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> tuple[Path, Path, int]:
    """A job on "aws" (the node a real SSH server) that wrote a checkpoint and ended, its
    checkpoint not pulled yet: (attempt dir, local checkpoint dir, job id)."""
    store = open_store(tmp_path / "state", lock=False)
    nodes = await nodes_on(make_provider, box_a)
    job = record_job_on_aws(store, nodes[0].instance_id)
    store.close()
    local = tmp_path / "checkpoints"
    attempt = tmp_path / "attempt-1"
    run = f'head -c {SIZE} /dev/zero > "$SKYD_CHECKPOINT_DIR/model.bin"'
    cmd = command(tmp_path, run=run, env={"SKYD_JOB_ID": "7", "SKYD_CHECKPOINT_DIR": str(local)})
    assert await runner.start(attempt, cmd, nodes, provider="aws") == 1
    status = await until_over(runner, attempt)  # this runner has no meter: charges nothing
    assert (status.phase, status.run_exit) == (RunPhase.DONE, 0)
    (attempt / CHECKPOINT_FILE).unlink()  # as if the checkpoint had not been pulled yet
    (local / "model.bin").unlink()
    return attempt, local, job


@pytest.mark.parametrize("when", ["after-charge", "before-charge"])
async def test_kill_9_around_the_charge_charges_the_pull_exactly_once(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    when: str,
) -> None:
    state_dir = tmp_path / "state"
    attempt, local, job = await ended_attempt(tmp_path, box_a, make_provider, runner)

    assert await run_child(state_dir, attempt, when) == "stopped"
    rows, _, _ = transfer_books(state_dir)
    assert len(rows) == (1 if when == "after-charge" else 0)
    assert not (attempt / CHECKPOINT_FILE).exists()  # killed before the pull was marked done

    # the restarted daemon pulls the same checkpoint again: charged once in all
    assert await run_child(state_dir, attempt, "never") == "pulled=True"
    assert (local / "model.bin").stat().st_size == SIZE
    rows, cost, daily = transfer_books(state_dir)
    assert len(rows) == 1
    _job, project, cloud, sent, amount = rows[0]
    assert (_job, project, cloud) == (job, "nlp", "aws")
    assert isinstance(sent, int) and SIZE < sent < SIZE + 20_480  # the tar stream
    assert amount == transfer_micros(sent, AWS_PER_GB) > 0
    assert cost == amount and daily == (sent, amount)
    # and once marked done, nothing changed on the node: no pull, no charge
    assert await run_child(state_dir, attempt, "never") == "pulled=False"
    assert transfer_books(state_dir)[0] == rows


async def test_a_meter_that_fails_is_asked_again_before_anything_is_pulled_again(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    connections: SshConnections,
) -> None:
    attempt, local, _job = await ended_attempt(tmp_path, box_a, make_provider, runner)
    told: list[CheckpointPull] = []

    def flaky(pull: CheckpointPull) -> None:
        told.append(pull)
        if len(told) == 1:
            raise sqlite3.OperationalError("database is locked")

    metered = SshRunner(connections, command_timeout_s=5.0, meter=flaky)
    assert await metered.pull_checkpoints(attempt)
    assert (local / "model.bin").stat().st_size == SIZE
    assert not (attempt / CHECKPOINT_FILE).exists()
    (local / "model.bin").unlink()
    # the next sync reports the same pull again and copies nothing (no second egress)
    assert not await metered.pull_checkpoints(attempt)
    assert not (local / "model.bin").exists()
    assert len(told) == 2 and told[0] == told[1] and told[0].nbytes > SIZE
    assert (told[0].provider, told[0].key.startswith(f"checkpoint:{attempt}:")) == ("aws", True)
    assert (attempt / CHECKPOINT_FILE).exists()
    assert not await metered.pull_checkpoints(attempt)
    assert len(told) == 2

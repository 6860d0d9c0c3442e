"""kill -9 of a process that pulls a checkpoint from a node and charges its egress: the pull is
charged exactly once whether the process dies just after the charge commits (before the pull
is marked done) or just before it; the restarted process pulls again and the books agree.
A meter that fails is asked again at the next sync, with no second pull (no second egress).
A pull cut short midway is charged for the bytes that came before the cut, once, whether
the process dies before or after that charge; the retry that completes is charged for its
own bytes, so the books add up to every byte that crossed."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

import tests.ssh.egress_pull_child as child
from skyd.accounting.transfers import TransferCharges, transfer_micros
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.errors import ProviderError
from skyd.model import Instance, InstanceState, RunPhase
from skyd.optimizer.egress import find_egress_table
from skyd.providers.ssh import SshConnections
from skyd.runner import checkpoint_pull
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_state import CHECKPOINT_FILE, UNMETERED_FILE
from skyd.store import Store, open_store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.testing.ssh_server import FakeSshServer
from tests.ssh.ssh_helpers import ProviderFactory, until_over
from tests.ssh.test_ssh_runner import command, nodes_on

CHILD = Path(child.__file__)
SIZE = 1_500_000
BIG = 6_000_000  # more than a channel window (2 MiB): a link cut lands mid-stream
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
    if line.startswith("stopped"):
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
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    size: int = SIZE,
) -> tuple[Path, Path, int]:
    """A job on "aws" (the node a real SSH server) that wrote a checkpoint and ended, its
    checkpoint not pulled yet: (attempt dir, local checkpoint dir, job id)."""
    store = open_store(tmp_path / "state", lock=False)
    nodes = await nodes_on(make_provider, box_a)
    job = record_job_on_aws(store, nodes[0].instance_id)
    store.close()
    local = tmp_path / "checkpoints"
    attempt = tmp_path / "attempt-1"
    run = f'head -c {size} /dev/zero > "$SKYD_CHECKPOINT_DIR/model.bin"'
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


@pytest.mark.parametrize("when", ["cut-after-charge", "cut-before-charge"])
async def test_kill_9_around_the_charge_of_a_pull_cut_short_charges_its_bytes_once(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    when: str,
) -> None:
    state_dir = tmp_path / "state"
    attempt, local, job = await ended_attempt(tmp_path, box_a, make_provider, runner, BIG)

    said = await run_child(state_dir, attempt, when)
    cut = int(said.removeprefix("stopped read="))
    assert child.CUT_AT < cut < BIG  # the link dropped midway
    rows, _, _ = transfer_books(state_dir)
    assert [r[3] for r in rows] == ([cut] if when == "cut-after-charge" else [])
    assert not (local / "model.bin").exists()  # nothing of the torn pull kept

    # the restarted daemon charges the cut-short pull (once), then pulls again in full
    assert await run_child(state_dir, attempt, "never") == "pulled=True"
    assert (local / "model.bin").stat().st_size == BIG
    rows, cost, daily = transfer_books(state_dir)
    assert sorted(r[3] for r in rows) == [cut, rows[-1][3]]  # type: ignore[type-var]
    whole = rows[-1][3]
    assert isinstance(whole, int) and BIG < whole < BIG + 20_480
    assert [r[4] for r in rows] == [
        transfer_micros(cut, AWS_PER_GB),
        transfer_micros(whole, AWS_PER_GB),
    ]
    assert all(r[:3] == (job, "nlp", "aws") for r in rows)
    assert daily == (cut + whole, cost)
    assert await run_child(state_dir, attempt, "never") == "pulled=False"
    assert transfer_books(state_dir)[0] == rows


async def test_a_pull_cut_short_is_charged_for_the_bytes_that_crossed(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    connections: SshConnections,
) -> None:
    """Each try is charged for the bytes the daemon read off the channel: the two that the
    link dropped under, and the one that completed; in all, every byte that crossed."""
    attempt, local, _job = await ended_attempt(tmp_path, box_a, make_provider, runner, BIG)
    store = open_store(tmp_path / "state", lock=False)
    charges = TransferCharges(
        store=store, clock=VirtualClock(child.AT), table=find_egress_table(candidate_dirs())
    )
    metered = SshRunner(connections, command_timeout_s=5.0, meter=charges)
    reads: list[list[int]] = []
    try:
        for after in (400_000, 1_500_000):  # the second past a MiB recorded as it came
            reads.append([])
            await child.cut_streams(connections, attempt, after, reads[-1])
            with pytest.raises(ProviderError):
                await metered.pull_checkpoints(attempt)
            assert not (attempt / UNMETERED_FILE).exists()  # charged at once
        reads.append([])
        await child.cut_streams(connections, attempt, 10 * BIG, reads[-1])  # no cut
        assert await metered.pull_checkpoints(attempt)
        assert (local / "model.bin").stat().st_size == BIG
        assert not await metered.pull_checkpoints(attempt)
    finally:
        store.close()
    crossed = [sum(r) for r in reads]
    # each cut try read at least to its cut (and what the link had buffered before it)
    assert 400_000 < crossed[0] < BIG and 1_500_000 < crossed[1] < BIG < crossed[2]
    rows, cost, daily = transfer_books(tmp_path / "state")
    assert [r[3] for r in rows] == crossed
    assert [r[4] for r in rows] == [transfer_micros(n, AWS_PER_GB) for n in crossed]
    assert daily == (sum(crossed), cost)


async def test_a_pull_whose_tar_fails_after_sending_is_charged_for_what_it_sent(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    connections: SshConnections,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GNU tar exits 1 when a file changed while it read it (a checkpoint being rewritten):
    the pull fails and keeps nothing, but the stream crossed all the same."""
    attempt, local, _job = await ended_attempt(tmp_path, box_a, make_provider, runner)
    store = open_store(tmp_path / "state", lock=False)
    charges = TransferCharges(
        store=store, clock=VirtualClock(child.AT), table=find_egress_table(candidate_dirs())
    )
    metered = SshRunner(connections, command_timeout_s=5.0, meter=charges)
    real = checkpoint_pull.fetch_command
    try:
        with monkeypatch.context() as patch:
            patch.setattr(
                checkpoint_pull,
                "fetch_command",
                lambda where, *, everything: f"{real(where, everything=everything)}; exit 1",
            )
            with pytest.raises(ProviderError, match="tar exited 1"):
                await metered.pull_checkpoints(attempt)
        assert not (local / "model.bin").exists()
        assert await metered.pull_checkpoints(attempt)
    finally:
        store.close()
    rows, cost, _ = transfer_books(tmp_path / "state")
    sent = [r[3] for r in rows]
    assert len(sent) == 2 and sent[0] == sent[1]  # the whole stream, twice
    assert isinstance(sent[0], int) and SIZE < sent[0] < SIZE + 20_480
    assert cost == 2 * transfer_micros(sent[0], AWS_PER_GB)

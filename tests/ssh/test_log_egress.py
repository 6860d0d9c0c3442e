"""Job output read off a node is egress too: the bytes of every log read are charged as
data transfer, batched (one ledger row per node and batch, not per read), exactly once
across a daemon that dies before it saved a read's offset or after it charged a batch."""

from __future__ import annotations

from pathlib import Path

from skyd.accounting.transfers import TransferCharges, transfer_micros
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.model import RunPhase
from skyd.optimizer.egress import find_egress_table
from skyd.providers.ssh import SshConnections
from skyd.runner.json_files import read_json
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_logs import UNMETERED_READS
from skyd.runner.ssh_node import SshNode
from skyd.runner.ssh_state import OFFSETS_FILE
from skyd.store import Store, open_store
from skyd.testing.ssh_server import FakeSshServer
from tests.ssh.ssh_helpers import ProviderFactory
from tests.ssh.test_egress_crash import AWS_PER_GB, record_job_on_aws
from tests.ssh.test_ssh_runner import command, nodes_on

OUTPUT = 10_000  # bytes the job prints
CHUNK = 1_000  # what one poll copies: the log takes many reads
AT = 1_780_000_100.0


def log_rows(store: Store) -> list[tuple[str, int, int]]:
    rows = store.conn.execute(
        "SELECT transfer_key, bytes, amount_micros FROM ledger WHERE kind = 'transfer' ORDER BY seq"
    ).fetchall()
    return [tuple(r) for r in rows]


async def copied_to_the_end(runner: SshRunner, attempt: Path, remote_log: Path) -> int:
    """Poll until the attempt ended and all of its log was read; returns the polls made."""
    polls = 0
    while True:
        status = await runner.status(attempt)
        polls += 1
        offsets = read_json(attempt / OFFSETS_FILE) or {}
        if status.phase == RunPhase.DONE and offsets.get("0") == remote_log.stat().st_size:
            return polls
        assert polls < 2_000, status


async def start_job(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    store: Store,
) -> tuple[Path, Path]:
    """A job on "aws" (the node a real SSH server) that prints OUTPUT bytes and ends:
    (attempt dir, its remote job.log)."""
    nodes: list[SshNode] = await nodes_on(make_provider, box_a)
    record_job_on_aws(store, nodes[0].instance_id)
    attempt = tmp_path / "attempt-1"
    run = f"head -c {OUTPUT} /dev/zero | tr '\\0' x"
    assert await runner.start(attempt, command(tmp_path, run=run), nodes, provider="aws") == 1
    return attempt, box_a.home / nodes[0].remote_dir / "job.log"


def metered_runner(connections: SshConnections, store: Store, **extra: object) -> SshRunner:
    charges = TransferCharges(
        store=store, clock=VirtualClock(AT), table=find_egress_table(candidate_dirs())
    )
    meter = extra.pop("meter", charges)
    return SshRunner(
        connections,
        command_timeout_s=5.0,
        log_chunk_bytes=CHUNK,
        log_meter_s=3600.0,  # no batch is due by time in this test: only at the end
        meter=meter,  # type: ignore[arg-type]
    )


async def test_the_log_bytes_read_are_charged_in_one_batch(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    connections: SshConnections,
) -> None:
    store = open_store(tmp_path / "state", lock=False)
    runner = metered_runner(connections, store)
    try:
        attempt, remote_log = await start_job(tmp_path, box_a, make_provider, runner, store)
        polls = await copied_to_the_end(runner, attempt, remote_log)
        sent = remote_log.stat().st_size
        assert sent > OUTPUT and polls > sent // CHUNK  # many reads
        assert b"x" * OUTPUT in (tmp_path / "job.log").read_bytes()
        # one row for all of them, for every byte read off the node
        assert log_rows(store) == [
            (f"log:{attempt}:0:0-{sent}", sent, transfer_micros(sent, AWS_PER_GB))
        ]
        assert not (read_json(attempt / OFFSETS_FILE) or {}).get(UNMETERED_READS)
        await runner.status(attempt)  # nothing more to read or charge
        assert len(log_rows(store)) == 1
    finally:
        store.close()


async def test_a_daemon_killed_around_log_reads_and_their_charge_charges_each_byte_once(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    connections: SshConnections,
) -> None:
    store = open_store(tmp_path / "state", lock=False)
    try:
        runner = metered_runner(connections, store)
        attempt, remote_log = await start_job(tmp_path, box_a, make_provider, runner, store)
        offsets = attempt / OFFSETS_FILE
        for _ in range(2_000):
            if (first := (read_json(offsets) or {}).get("0", 0)) >= 3 * CHUNK:
                break
            await runner.status(attempt)
        # killed after a read was appended to job.log, before its offset (and the read's
        # record) was saved: the restarted daemon reads those bytes again
        before = offsets.read_bytes()
        await runner.status(attempt)
        offsets.write_bytes(before)

        # and it dies again just after charging what it found (before clearing it)
        charges = TransferCharges(
            store=store, clock=VirtualClock(AT), table=find_egress_table(candidate_dirs())
        )
        told: list[CheckpointPull] = []

        def dies_after_the_first_charge(pull: CheckpointPull) -> None:
            told.append(pull)
            charges(pull)
            if len(told) == 1:
                raise RuntimeError("killed after the charge committed")

        restarted = metered_runner(connections, store, meter=dies_after_the_first_charge)
        await copied_to_the_end(restarted, attempt, remote_log)
        sent = remote_log.stat().st_size
        rows = log_rows(store)
        # the first batch reported twice, charged once; the re-read charged once
        assert told[0].key == told[1].key == rows[0][0] == f"log:{attempt}:0:0-{first}"
        assert rows[0][1] == first and len(rows) == 3  # then the re-read, then the rest
        assert rows[1][0].startswith(f"log:{attempt}:0:{first}-")
        assert sum(r[1] for r in rows) == sent
        assert [r[2] for r in rows] == [transfer_micros(r[1], AWS_PER_GB) for r in rows]
    finally:
        store.close()

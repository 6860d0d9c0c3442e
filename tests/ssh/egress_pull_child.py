"""A real process that pulls an attempt's checkpoints over SSH and charges the egress, for the
kill -9 test (run as a script): `python egress_pull_child.py STATE_DIR ATTEMPT_DIR WHEN`.

It opens the store as the daemon does (the writer's lock), and pulls with the daemon's own
SshRunner and TransferCharges. WHEN says where it stops to be killed: `after-charge` (the
charge is committed, the pull not yet marked done), `before-charge` (the bytes are home, not
charged), or `never` (it finishes and exits 0). It prints `stopped` and waits for SIGKILL.
`cut-after-charge` and `cut-before-charge` first cut the link once CUT_AT bytes of the
checkpoint stream came, and stop around the charge of that failed pull's bytes; they print
`stopped read=N`, N the bytes the daemon read off the channel before the cut.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from asyncssh import SSHClientProcess

from skyd.accounting.transfers import TransferCharges
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.optimizer.egress import find_egress_table
from skyd.providers.ssh import SshConnections
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_node import SshNode
from skyd.runner.ssh_state import NODES_FILE
from skyd.store import open_store

AT = 1_780_000_100.0
CUT_AT = 600_000


async def cut_streams(
    connections: SshConnections, attempt_dir: Path, after: int, reads: list[int]
) -> None:
    """Drop the link to the attempt's node 0 once a stream read off it passes `after` bytes
    (the reads that came are counted in `reads`); later connections are left alone."""
    saved = json.loads((attempt_dir / NODES_FILE).read_text())
    conn = await connections.connection(SshNode.from_json(saved["nodes"][0]).target)
    real_create = conn.create_process

    async def create_process(*args: Any, **kwargs: Any) -> SSHClientProcess[Any]:
        process = await real_create(*args, **kwargs)
        real_read = process.stdout.read

        async def read(n: int = -1) -> bytes:
            data: bytes = await real_read(min(n, 65_536))  # small reads: a cut lands midway
            reads.append(len(data))
            if sum(reads) > after:
                conn.abort()  # the link drops, part of the stream already home
            return data

        # fault injection: this one stream's bound method is replaced, which asyncssh's
        # types do not foresee
        process.stdout.read = read  # type: ignore[method-assign]
        return process

    # the daemon awaits create_process (skyd/providers/ssh/streams.py), so a coroutine stands
    # in for asyncssh's awaitable context-manager wrapper, which its types do not allow
    conn.create_process = create_process  # type: ignore[method-assign, assignment]


def stop_here(said: str = "stopped") -> None:
    print(said, flush=True)
    sys.stdin.readline()  # the test kills us here
    raise SystemExit("not killed")


async def main(state_dir: Path, attempt_dir: Path, when: str) -> None:
    store = open_store(state_dir)
    charges = TransferCharges(
        store=store, clock=VirtualClock(AT), table=find_egress_table(candidate_dirs())
    )

    reads: list[int] = []
    stop = when.removeprefix("cut-")

    def meter(pull: CheckpointPull) -> None:
        if when.startswith("cut-") and ":cut:" not in pull.key:
            raise SystemExit(f"not cut short: {pull}")
        said = f"stopped read={sum(reads)}" if when.startswith("cut-") else "stopped"
        if stop == "before-charge":
            stop_here(said)
        charges(pull)
        if stop == "after-charge":
            stop_here(said)

    connections = SshConnections(connect_timeout_s=5.0)
    try:
        if when.startswith("cut-"):
            await cut_streams(connections, attempt_dir, CUT_AT, reads)
        runner = SshRunner(connections, command_timeout_s=10.0, meter=meter)
        pulled = await runner.pull_checkpoints(attempt_dir)
        print(f"pulled={pulled}", flush=True)
    finally:
        await connections.aclose()
        store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))

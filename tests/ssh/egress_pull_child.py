"""A real process that pulls an attempt's checkpoints over SSH and charges the egress, for the
kill -9 test (run as a script): `python egress_pull_child.py STATE_DIR ATTEMPT_DIR WHEN`.

It opens the store as the daemon does (the writer's lock), and pulls with the daemon's own
SshRunner and TransferCharges. WHEN says where it stops to be killed: `after-charge` (the
charge is committed, the pull not yet marked done), `before-charge` (the bytes are home, not
charged), or `never` (it finishes and exits 0). It prints `stopped` and waits for SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from skyd.accounting.transfers import TransferCharges
from skyd.catalog.locate import candidate_dirs
from skyd.clock import VirtualClock
from skyd.optimizer.egress import find_egress_table
from skyd.providers.ssh import SshConnections
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.store import open_store

AT = 1_780_000_100.0


def stop_here() -> None:
    print("stopped", flush=True)
    sys.stdin.readline()  # the test kills us here
    raise SystemExit("not killed")


async def main(state_dir: Path, attempt_dir: Path, when: str) -> None:
    store = open_store(state_dir)
    charges = TransferCharges(
        store=store, clock=VirtualClock(AT), table=find_egress_table(candidate_dirs())
    )

    def meter(pull: CheckpointPull) -> None:
        if when == "before-charge":
            stop_here()
        charges(pull)
        if when == "after-charge":
            stop_here()

    connections = SshConnections(connect_timeout_s=5.0)
    try:
        runner = SshRunner(connections, command_timeout_s=10.0, meter=meter)
        pulled = await runner.pull_checkpoints(attempt_dir)
        print(f"pulled={pulled}", flush=True)
    finally:
        await connections.aclose()
        store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))

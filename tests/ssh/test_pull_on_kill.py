"""A billed checkpoint pull makes the next one wait (skyd.runner.pull_cadence), but a kill
(a move, a cancel) does not lose what the job saved since: the killed attempt's checkpoint,
including what it wrote on its SIGTERM, is pulled once more."""

from __future__ import annotations

from pathlib import Path

from skyd.model import RunPhase
from skyd.providers.ssh import SshConnections
from skyd.runner.pull_cadence import PullPrice
from skyd.runner.pulls import CheckpointPull
from skyd.runner.ssh import SshRunner
from skyd.testing.ssh_server import FakeSshServer
from tests.ssh.ssh_helpers import ProviderFactory, until_phase
from tests.ssh.test_ssh_runner import command, nodes_on

# saves "step N" as fast as it can; on SIGTERM saves "stopped" and leaves
RUN = (
    'ck="$SKYD_CHECKPOINT_DIR"; save() { echo "$1" > "$ck/../s.tmp" && mv "$ck/../s.tmp"'
    " \"$ck/state\"; }; trap 'save stopped; exit 0' TERM; i=0;"
    ' while true; do i=$((i+1)); save "step $i"; sleep 0.05; done'
)


async def test_a_killed_attempt_is_pulled_once_more_though_its_next_pull_waits(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    connections: SshConnections,
) -> None:
    told: list[CheckpointPull] = []
    runner = SshRunner(
        connections,
        command_timeout_s=5.0,
        checkpoint_sync_s=0.01,
        checkpoint_sync_max_s=3600.0,
        meter=told.append,
        # a billed pull on an instance never lost unannounced: the next waits the ceiling
        pricing=lambda pull: PullPrice(1_000, 1_000_000, 0.0),
    )
    nodes = await nodes_on(make_provider, box_a)
    local = tmp_path / "checkpoints"
    attempt = tmp_path / "attempt-1"
    cmd = command(tmp_path, run=RUN, env={"SKYD_JOB_ID": "7", "SKYD_CHECKPOINT_DIR": str(local)})
    assert await runner.start(attempt, cmd, nodes, provider="aws") == 1
    while not told:
        await until_phase(runner, attempt, RunPhase.RUN)
    first = (local / "state").read_text()
    assert first.startswith("step ")
    # the job goes on saving, but for an hour nothing more is pulled
    remote = box_a.home / nodes[0].remote_dir / "checkpoints" / "state"
    while remote.read_text() == first:
        await until_phase(runner, attempt, RunPhase.RUN)
    for _ in range(5):
        await until_phase(runner, attempt, RunPhase.RUN)
    assert (len(told), (local / "state").read_text()) == (1, first)

    await runner.kill(attempt, grace_seconds=5.0)
    assert (await runner.status(attempt)).phase == RunPhase.KILLED
    assert (local / "state").read_text() == "stopped\n"
    assert len(told) == 2
    # and only once
    await runner.status(attempt)
    assert len(told) == 2

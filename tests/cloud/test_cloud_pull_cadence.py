"""A job on a fake AWS VM (a real sshd on loopback) saves its checkpoint several times a
second: once a pull of it has been charged as egress, the next waits about as long as the
pull cadence allows (here its ceiling, `checkpoint_sync_max_s`), not the few tenths of a
second of `checkpoint_sync_s`; when the job ends, its last checkpoint is pulled at once."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.store import open_store
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import job_when, settings_for_tests, wait_until

CEILING_S = 3.0
ENDED = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")


def task(signals: Path) -> str:
    # each save is written beside the directory and renamed in, as training code does
    return f"""\
name: frequent-checkpoints
resources:
  cloud: aws
  region: us-east-1
  instance_type: c5.large
run: |
  ck="$SKYD_CHECKPOINT_DIR"
  save() {{
    {{ echo "$1"; head -c 200000 /dev/zero; }} > "$ck/../state.tmp"
    mv "$ck/../state.tmp" "$ck/state"
  }}
  i=0
  until [ -f {signals}/stop ]; do i=$((i+1)); save "step $i"; sleep 0.1; done
  save final
"""


def pull_times_ms(state_dir: Path) -> list[int]:
    """When each metered checkpoint pull was charged, in order (not the job's log reads)."""
    store = open_store(state_dir, lock=False)
    try:
        rows = store.conn.execute(
            "SELECT MIN(start_ms) FROM ledger WHERE kind = 'transfer'"
            " AND transfer_key LIKE 'checkpoint:%' AND transfer_key NOT LIKE '%:cut:%'"
            " GROUP BY transfer_key ORDER BY MIN(seq)"
        ).fetchall()
        return [int(r[0]) for r in rows]
    finally:
        store.close()


async def test_a_billed_pull_waits_before_the_next_and_the_last_save_comes_home(
    tmp_path: Path,
) -> None:
    async with CloudWorld(tmp_path / "world", boot_delay_s=1.0) as world:
        signals = world.machines.root / "signals"  # the VMs' login users can read it
        signals.mkdir()
        signals.chmod(0o755)
        settings = world.settings(settings_for_tests(tmp_path))
        settings.scheduler_tick_seconds = 0.2
        settings.cloud_ssh.checkpoint_sync_s = 0.2
        settings.cloud_ssh.checkpoint_sync_max_s = CEILING_S
        state = settings.state_dir
        async with world.daemon(settings) as daemon:
            with DaemonClient(daemon.socket_path) as client:
                submitted = await asyncio.to_thread(
                    client.submit_task, task(signals), str(tmp_path), None
                )
                job_id = int(submitted["id"])
                await asyncio.to_thread(
                    wait_until,
                    lambda: len(pull_times_ms(state)) >= 3,
                    timeout=90,
                    error=lambda: (client.get_job(job_id), pull_times_ms(state)),
                )
                (signals / "stop").touch()
                final = await job_when(client, job_id, ENDED, wait_s=60)
        assert final["state"] == "SUCCEEDED", final
        times = pull_times_ms(state)
        # the job saved every ~0.1 s and the daemon looked every 0.2 s, yet while it ran
        # each charged pull was followed by nearly the ceiling without one: a fresh save is
        # taken once the wait less half the time between saves (as the looks saw it, 0.2 s
        # here, more on a loaded machine) is over (PullClock); pulling every save would
        # leave gaps of a few tenths of a second
        running = times[:3]
        gaps = [b - a for a, b in itertools.pairwise(running)]
        assert all(gap >= 0.75 * CEILING_S * 1000 for gap in gaps), gaps
        # the save made as the job ended came home, without waiting out the ceiling
        local = state / "checkpoints" / str(job_id) / "state"
        assert local.read_bytes().startswith(b"final\n")

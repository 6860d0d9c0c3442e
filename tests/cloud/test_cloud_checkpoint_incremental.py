"""A spot job on a fake GCP VM (a real sshd on loopback) keeps several checkpoint files: each
pull brings home (and the ledger charges) only the files new since the last one, a file the
job deletes disappears at home, and when the cloud takes the VM back the next attempt starts
with exactly the files the daemon held."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.catalog import Catalog
from skyd.providers.base import TAG_JOB, InstanceLister
from skyd.store import open_store
from skyd.testing.cloud_world import CloudWorld
from skyd.testing.daemon import settings_for_tests, wait_until

MB = 1_000_000
TAR_SLACK = 20_480  # tar headers, end marker, padding to 10240-byte records
TERMINAL = ("SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED")


def task(signals: Path) -> str:
    # checkpoints are written beside the directory and renamed in, as training code does, so
    # a pull never sees half a file; the job waits for the test's go-ahead between saves
    return f"""\
name: incremental-checkpoints
resources:
  cloud: gcp
  accelerators: T4:1
  use_spot: true
job_recovery:
  strategy: EAGER_NEXT_REGION
run: |
  ck="$SKYD_CHECKPOINT_DIR"
  if [ -f "$ck/ckpt-b.pt" ]; then
    echo "resumed with: $(cd "$ck" && ls -1 | sort | tr '\\n' ' ')"
    (cd "$ck" && cksum ckpt-a.pt ckpt-b.pt)
    exit 0
  fi
  save() {{ head -c "$2" /dev/urandom > "$ck/../$1.tmp" && mv "$ck/../$1.tmp" "$ck/$1"; }}
  save old.txt 1000
  save ckpt-a.pt {3 * MB}
  until [ -f {signals}/go-b ]; do sleep 0.1; done
  save ckpt-b.pt {MB}
  until [ -f {signals}/go-rm ]; do sleep 0.1; done
  rm "$ck/old.txt"
  until [ -f {signals}/never ]; do sleep 0.1; done
"""


def pulls_charged(state_dir: Path) -> list[int]:
    """The bytes of each metered checkpoint pull, in order (one pull may be split among
    payers; the job's log reads are charged under keys of their own)."""
    store = open_store(state_dir, lock=False)
    try:
        rows = store.conn.execute(
            "SELECT SUM(bytes) FROM ledger WHERE kind = 'transfer'"
            " AND transfer_key LIKE 'checkpoint:%' GROUP BY transfer_key ORDER BY MIN(seq)"
        ).fetchall()
        return [int(r[0]) for r in rows]
    finally:
        store.close()


def cksums(directory: Path, *names: str) -> str:
    done = subprocess.run(
        ["cksum", *names], cwd=directory, capture_output=True, text=True, check=True
    )
    return done.stdout


async def test_pulls_move_only_new_files_and_the_resumed_attempt_sees_them(
    tmp_path: Path,
) -> None:
    async with CloudWorld(tmp_path / "world", boot_delay_s=1.0) as world:
        await _run(world, tmp_path)


async def _run(world: CloudWorld, tmp_path: Path) -> None:
    signals = world.machines.root / "signals"  # the VMs' login users can read it
    signals.mkdir()
    signals.chmod(0o755)
    settings = world.settings(settings_for_tests(tmp_path))
    settings.scheduler_tick_seconds = 0.5
    settings.cloud_ssh.checkpoint_sync_s = 0.2
    # every save pulled as it lands (the wait a billed pull earns is test_cloud_pull_cadence's)
    settings.cloud_ssh.checkpoint_sync_max_s = 0.2
    providers = world.providers(Catalog.load(settings.catalog_dir))
    state = settings.state_dir
    async with world.daemon(settings, providers) as daemon:
        with DaemonClient(daemon.socket_path) as client:
            job_id = int(
                (await asyncio.to_thread(client.submit_task, task(signals), str(tmp_path), None))[
                    "id"
                ]
            )
            local = state / "checkpoints" / str(job_id)

            def has(name: str, size: int) -> bool:
                path = local / name
                return path.is_file() and path.stat().st_size == size

            def wait(condition: object, what: str) -> None:
                wait_until(
                    condition,  # type: ignore[arg-type]
                    timeout=90,
                    error=lambda: (what, client.get_job(job_id), pulls_charged(state)),
                )

            # the first save came home (in one pull or two: old.txt may go first)
            await asyncio.to_thread(
                wait,
                lambda: (
                    has("ckpt-a.pt", 3 * MB)
                    and has("old.txt", 1000)
                    and sum(pulls_charged(state)) > 3 * MB
                ),
                "ckpt-a",
            )
            before = pulls_charged(state)
            assert 3 * MB < sum(before) < 3 * MB + 2 * TAR_SLACK

            (signals / "go-b").touch()
            await asyncio.to_thread(wait, lambda: has("ckpt-b.pt", MB), "ckpt-b")
            after_b = await asyncio.to_thread(
                wait_until, lambda: p if (p := pulls_charged(state)) != before else None, timeout=30
            )
            assert after_b[: len(before)] == before and len(after_b) == len(before) + 1
            second = after_b[-1]
            print(f"metered bytes: first save {sum(before)}, second pull {second}")
            assert MB < second < MB + TAR_SLACK  # ckpt-b alone crossed, not 4 MB
            assert has("ckpt-a.pt", 3 * MB)

            (signals / "go-rm").touch()
            await asyncio.to_thread(
                wait, lambda: local.is_dir() and not (local / "old.txt").exists(), "rm"
            )
            assert pulls_charged(state) == after_b  # a deletion moves (and costs) nothing
            assert sorted(p.name for p in local.iterdir()) == ["ckpt-a.pt", "ckpt-b.pt"]
            held = await asyncio.to_thread(cksums, local, "ckpt-a.pt", "ckpt-b.pt")

            # the cloud takes the VM back: the next attempt starts from what came home
            job = await asyncio.to_thread(client.get_job, job_id)
            provider = providers[job["placement"]["provider"]]
            assert isinstance(provider, InstanceLister)
            running = [
                i
                for i in await provider.instances({TAG_JOB: str(job_id)})
                if i.state.value == "RUNNING"
            ]
            assert len(running) == 1
            world.preempt(running[0])
            final = await asyncio.to_thread(
                wait_until,
                lambda: j if (j := client.get_job(job_id))["state"] in TERMINAL else None,
                timeout=120,
                error=lambda: client.get_job(job_id),
            )
            assert final["state"] == "SUCCEEDED", final
            assert final["preemptions"] >= 1
            done = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "skyctl",
                    "--socket",
                    daemon.socket_path,
                    "logs",
                    str(job_id),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            logs = done.stdout
    assert "resumed with: ckpt-a.pt ckpt-b.pt \n" in logs, logs
    assert held in logs, logs
    # the new VM was given the checkpoint, not made to send it back: nothing more was charged
    assert pulls_charged(state) == after_b

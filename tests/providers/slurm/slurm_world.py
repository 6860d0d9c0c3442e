"""The real single-machine Slurm cluster of scripts/start-slurm.sh, and a provider over it."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.clock import SystemClock
from skyd.model import InstanceState, LaunchRequest, Offer, RunPhase, RunStatus
from skyd.providers.base import job_tags
from skyd.providers.slurm import SlurmProvider, SlurmProviderConfig, SlurmRunner
from skyd.runner.process import RunCommand
from skyd.testing import polling

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "start-slurm.sh"
# Real Slurm schedules every couple of seconds; this only bounds how long a test waits.
WAIT_LIMIT_S = 60.0
CLUSTER = "test"


def ensure_cluster() -> None:
    """Start (or keep) the test cluster; it needs root, as CI has."""
    if os.geteuid() != 0:
        pytest.skip("the Slurm test cluster needs root (scripts/start-slurm.sh --install)")
    done = subprocess.run(
        ["sh", str(SCRIPT), "--install"], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/start-slurm.sh failed: {done.stderr.strip()[-2000:]}")


# One cluster serves every test process on the machine (several checkouts may run the suite
# at once); a test that preempts or fills it must not meet another's jobs. Tests take turns.
LOCK = Path("/var/spool/skyd-slurm/tests.lock")


@contextlib.contextmanager
def cluster_to_myself() -> Iterator[None]:
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def provider_config(work_dir: Path, **cluster: object) -> SlurmProviderConfig:
    settings: dict[str, object] = {
        "name": CLUSTER,
        "work_dir": str(work_dir),
        "python": sys.executable,
    }
    settings.update(cluster)
    return SlurmProviderConfig.from_mapping({"clusters": [settings]})


async def make_provider(work_dir: Path, **cluster: object) -> SlurmProvider:
    provider = SlurmProvider(provider_config(work_dir, **cluster), SystemClock())
    await provider.refresh()
    return provider


def offer_of(provider: SlurmProvider, partition: str, gpus: int) -> Offer:
    return next(o for o in provider.offers() if o.zone == partition and o.accelerator_count == gpus)


def request(
    offer: Offer, token: str, *, nodes: int = 1, daemon: str = "skyd-test"
) -> LaunchRequest:
    job_id = int(token.rsplit("-", 2)[-2]) if token.count("-") >= 2 else 1
    return LaunchRequest(
        job_id=job_id,
        attempt=1,
        client_token=token,
        offer=offer,
        spot=False,
        num_nodes=nodes,
        tags=job_tags(daemon, job_id, 1, token),
    )


async def until_states(
    provider: SlurmProvider, ids: list[str], want: set[InstanceState]
) -> dict[str, InstanceState]:
    return await polling.until_states(provider, ids, want, limit_s=WAIT_LIMIT_S, every_s=0.3)


async def until_phase(runner: SlurmRunner, attempt_dir: Path, *phases: RunPhase) -> RunStatus:
    return await polling.until_phase(runner, attempt_dir, phases, limit_s=WAIT_LIMIT_S, every_s=0.3)


async def until_over(runner: SlurmRunner, attempt_dir: Path) -> RunStatus:
    return await until_phase(runner, attempt_dir, *polling.OVER)


def sbatch(*args: str) -> str:
    """Submit a job of someone else's (e.g. one that preempts ours); returns its id."""
    done = subprocess.run(
        ["sbatch", "--parsable", "--output=/dev/null", "--chdir=/tmp", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().split(";")[0]


def command(attempt_dir: Path, run: str, setup: str | None = None) -> RunCommand:
    attempt_dir.mkdir(parents=True, exist_ok=True)
    return RunCommand(
        setup=setup,
        run=run,
        cwd=attempt_dir / "workdir",
        env={"SKYD_JOB_ID": "1", "PATH": "/nowhere"},
        log_path=attempt_dir / "job.log",
    )


def squeue_ids() -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=False
    ).stdout
    return set(out.split())


async def until_left_squeue(job_id: str) -> None:
    async with asyncio.timeout(WAIT_LIMIT_S):
        while True:
            if job_id not in await asyncio.to_thread(squeue_ids):
                return
            await asyncio.sleep(0.3)  # polling a real scheduler, not ordering

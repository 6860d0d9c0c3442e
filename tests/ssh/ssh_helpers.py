"""Helpers of the ssh tests: host settings for a fake machine, and waits on remote attempts.

They live here, not in conftest.py, because a test module cannot import from a conftest by
name: every test directory has one, and pytest keeps only one module called `conftest`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skyd.model import RunPhase, RunStatus
from skyd.providers.ssh import SshHost, SshProvider
from skyd.runner.ssh import SshRunner
from skyd.testing.ssh_server import FakeSshServer

# Real remote processes take real time to finish; this only bounds how long a test waits.
WAIT_LIMIT_S = 20.0


def host_for(fake: FakeSshServer, name: str | None = None, **overrides: Any) -> SshHost:
    settings: dict[str, Any] = {
        "name": name or fake.name,
        "host": fake.host,
        "port": fake.port,
        "user": fake.user,
        "key_path": fake.client_key_path,
        "known_hosts": fake.known_hosts_path,
        "cpus": 8,
        "memory_gib": 32,
        "max_jobs": 4,
        "python": sys.executable,  # the test machine's python3 may be a slow pyenv shim
    }
    settings.update(overrides)
    return SshHost(**settings)


ProviderFactory = Callable[..., SshProvider]


async def until_over(runner: SshRunner, attempt_dir: Path) -> RunStatus:
    """Poll until the attempt has ended (the remote processes are real)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while True:
        status = await runner.status(attempt_dir)
        if status.phase in (RunPhase.DONE, RunPhase.KILLED, RunPhase.LOST):
            return status
        if loop.time() > deadline:
            raise AssertionError(f"attempt still {status} after {WAIT_LIMIT_S}s")
        await asyncio.sleep(0.05)


async def until_phase(runner: SshRunner, attempt_dir: Path, phase: RunPhase) -> RunStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while True:
        status = await runner.status(attempt_dir)
        if status.phase == phase:
            return status
        if loop.time() > deadline:
            raise AssertionError(f"attempt still {status}, waiting for {phase}")
        await asyncio.sleep(0.05)

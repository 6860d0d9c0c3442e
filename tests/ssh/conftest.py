"""Fixtures of the ssh tests: fake lab machines on loopback and a provider over them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from skyd.clock import VirtualClock
from skyd.providers.ssh import SshConnections, SshHost, SshProvider, SshProviderConfig
from skyd.runner.process import RunPhase, RunStatus
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


async def _started(root: Path, name: str) -> FakeSshServer:
    fake = FakeSshServer(root / name, name=name)
    await fake.start()
    return fake


@pytest.fixture
async def box_a(tmp_path: Path) -> AsyncIterator[FakeSshServer]:
    fake = await _started(tmp_path, "box-a")
    yield fake
    await fake.aclose()


@pytest.fixture
async def box_b(tmp_path: Path) -> AsyncIterator[FakeSshServer]:
    fake = await _started(tmp_path, "box-b")
    yield fake
    await fake.aclose()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1_000_000.0)


@pytest.fixture
async def connections() -> AsyncIterator[SshConnections]:
    conns = SshConnections(connect_timeout_s=2.0)
    yield conns
    await conns.aclose()


ProviderFactory = Callable[..., SshProvider]


@pytest.fixture
async def make_provider(
    tmp_path: Path, clock: VirtualClock, connections: SshConnections
) -> AsyncIterator[ProviderFactory]:
    made: list[SshProvider] = []

    def make(*hosts: SshHost, **settings: Any) -> SshProvider:
        settings.setdefault("state_dir", tmp_path / "ssh-state")
        settings.setdefault("probe_timeout_s", 1.0)
        settings.setdefault("kill_grace_s", 1.0)
        provider = SshProvider(SshProviderConfig(hosts=hosts, **settings), clock, connections)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def runner(connections: SshConnections) -> SshRunner:
    return SshRunner(connections, command_timeout_s=5.0)


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

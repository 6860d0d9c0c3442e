"""Fixtures of the ssh tests: fake lab machines on loopback and a provider over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skyd.clock import VirtualClock
from skyd.providers.ssh import SshConnections, SshHost, SshProvider, SshProviderConfig
from skyd.runner.ssh import SshRunner
from skyd.testing.ssh_server import FakeSshServer
from tests.ssh.ssh_helpers import ProviderFactory


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

"""The provider contract for the ssh provider, against in-process SSH machines (asyncssh fakes)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skyd.clock import VirtualClock
from skyd.errors import AuthError, CapacityError, ProviderError
from skyd.model import Offer
from skyd.providers.base import Provider
from skyd.providers.ssh import SshHost, SshProvider, SshProviderConfig
from skyd.testing.ssh_server import FakeSshServer, SshFault
from tests.providers.contract import ContractHarness, Fault, ProviderContract

HOST = "box-a"


def _fault(fault: Fault) -> SshFault:
    """What each failure looks like on a lab machine."""
    return {
        # an admin drained the machine: the probe says so
        Fault.CAPACITY: SshFault("exec", "skyd-probe", stdout="skyd-probe drained\n"),
        Fault.AUTH: SshFault("reject_auth"),
        # sshd's MaxStartups drops logins beyond its limit
        Fault.THROTTLE: SshFault("disconnect"),
        Fault.SERVER_ERROR: SshFault(
            "exec",
            "skyd-probe",
            stderr="sh: fork: Resource temporarily unavailable\n",
            exit_status=254,
        ),
        Fault.TIMEOUT: SshFault("hang"),
    }[fault]


class SshHarness:
    def __init__(self, provider: SshProvider, fake: FakeSshServer, state_dir: Path) -> None:
        self.provider: Provider = provider
        self.fake = fake
        self.state_dir = state_dir

    def offer(self, spot: bool) -> Offer:
        # A lab machine has one market; the provider records the spot flag it was asked for.
        return self.provider.offers()[0]

    sdk_retries = False

    def inject(self, fault: Fault, offer: Offer, persistent: bool = False) -> None:
        for _ in range(20 if persistent else 1):  # ssh faults are consumed one per event
            self.fake.add_fault(_fault(fault))

    def clear_faults(self) -> None:
        self.fake.clear_faults()

    async def preempt(self, instance_id: str) -> None:
        await self.fake.go_down()  # the machine stops answering

    async def leftovers(self) -> list[str]:
        return sorted(p.stem for p in (self.state_dir / "claims").glob("ssh-*.json"))

    def create_calls(self) -> int:
        return self.fake.calls["exec"]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[SshHarness]:
    fake = FakeSshServer(tmp_path / HOST, name=HOST)
    await fake.start()
    host = SshHost(
        name=HOST,
        host=fake.host,
        port=fake.port,
        user=fake.user,
        key_path=fake.client_key_path,
        known_hosts=fake.known_hosts_path,
        cpus=4,
        memory_gib=16,
        max_jobs=4,
        python=sys.executable,
    )
    state_dir = tmp_path / "ssh-state"
    config = SshProviderConfig(
        hosts=[host],
        state_dir=state_dir,
        probe_timeout_s=1.0,
        down_after_failures=1,
        kill_grace_s=0.5,
    )
    provider = SshProvider(config, VirtualClock(start=1_000.0))
    yield SshHarness(provider, fake, state_dir)
    await provider.aclose()
    await fake.aclose()


class TestSshContract(ProviderContract):
    # A lab pool has no quota service to refuse a launch, so the QUOTA case does not apply.
    @pytest.mark.parametrize(
        ("fault", "error"),
        [(Fault.CAPACITY, CapacityError), (Fault.AUTH, AuthError)],
    )
    async def test_fault_maps_to_error_and_scope(
        self, harness: ContractHarness, fault: Fault, error: type[ProviderError]
    ) -> None:
        await super().test_fault_maps_to_error_and_scope(harness, fault, error)

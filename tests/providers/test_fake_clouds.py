"""The three fakes together, configured the way a daemon is (skyd.daemon builds the adapters
from FakeClouds.daemon_tables): each launch is a machine that accepts the daemon's key for the
user the instance names; preemption and terminate leave nothing in any fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skyd.catalog import Catalog
from skyd.clock import SystemClock
from skyd.daemon_providers import build_cloud_providers
from skyd.model import InstanceState, Offer
from skyd.providers.base import TAG_JOB, InstanceLister
from skyd.testing.daemon import settings_for_tests
from skyd.testing.fake_clouds import AWS_TEST_CREDENTIALS, FakeClouds
from skyd.testing.fake_vm import write_key_pair
from tests.providers.contract import request_for, until_state

OFFERS = {
    "aws": Offer("aws", "us-east-1", "use1-az1", "t3.micro", "", 0, 2, 1.0, 1, 1),
    "gcp": Offer("gcp", "us-central1", "us-central1-a", "n2-standard-8", "", 0, 8, 32, 1, 1),
    "azure": Offer("azure", "eastus", "", "Standard_D2s_v5", "", 0, 2, 8, 1, 1),
}


async def test_a_daemon_config_launches_real_machines_on_all_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AWS_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    key = tmp_path / "id_ed25519"
    public = write_key_pair(key, "skyd-daemon")
    async with FakeClouds(tmp_path / "clouds") as clouds:
        settings = settings_for_tests(tmp_path)
        tables = clouds.daemon_tables(public)
        for table in tables.values():
            del table["ssh_public_key"]  # the daemon delivers its own [cloud_ssh] key
        (tmp_path / "id_ed25519.pub").unlink()  # derived from the private key, then
        settings.cloud_ssh.key_path = key
        settings.aws, settings.gcp, settings.azure = tables["aws"], tables["gcp"], tables["azure"]
        providers = build_cloud_providers(settings, SystemClock(), Catalog.load())
        try:
            for job, (cloud, offer) in enumerate(sorted(OFFERS.items()), start=1):
                provider = providers[cloud]
                [launched] = await provider.launch(request_for(offer, spot=True, job_id=job))
                await until_state(provider, [launched.instance_id], InstanceState.RUNNING)
                assert isinstance(provider, InstanceLister)
                [inst] = await provider.instances({TAG_JOB: str(job)})
                assert inst.public_ip is not None and inst.ssh_user is not None
                vm = clouds.machines.by_address(inst.public_ip)
                await asyncio.to_thread(vm.wait_up, 30)
                ssh = await asyncio.create_subprocess_exec(
                    *vm.ssh_argv(inst.ssh_user, key),
                    f"echo {cloud} $(id -un)",
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                out, _ = await asyncio.wait_for(ssh.communicate(), 30)
                assert out.decode().split() == [cloud, inst.ssh_user], out
                clouds.preempt(inst)
                assert vm.processes() == []
                assert (await provider.describe([inst.instance_id]))[inst.instance_id] in (
                    InstanceState.PREEMPTED,
                    InstanceState.TERMINATED,
                )
                await provider.terminate([inst.instance_id])
            assert clouds.leftovers() == []
        finally:
            for provider in providers.values():
                await provider.aclose()

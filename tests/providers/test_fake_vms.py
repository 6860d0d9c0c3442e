"""Fake clouds' VMs are real machines: an OpenSSH sshd per instance on its own loopback
address, for the user and key the launch delivered the cloud's own way, gone (with all it
started) on stop, preemption and terminate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from skyd.clock import VirtualClock
from skyd.model import Instance, InstanceState, Offer
from skyd.providers.aws import AwsConfig, AwsProvider
from skyd.providers.azure import AzureConfig, AzureProvider
from skyd.providers.azure.provider import split_instance_key as azure_key
from skyd.providers.gcp import GcpConfig, GcpProvider
from skyd.providers.gcp.provider import split_instance_key as gce_key
from skyd.testing.ec2_fixtures import AWS_TEST_IMAGE, fresh_ec2
from skyd.testing.fake_azure import FakeAzure, StaticTokenCredential
from skyd.testing.fake_gce import FakeGce
from skyd.testing.fake_vm import FakeVm, FakeVmHost, write_key_pair
from skyd.testing.moto_ec2 import MotoEc2, MotoServerThread
from tests.providers.contract import request_for, until_state

GCE_OFFER = Offer("gcp", "us-central1", "us-central1-a", "n2-standard-8", "", 0, 2, 8, 1, 1)
AZURE_OFFER = Offer("azure", "eastus", "", "Standard_D2s_v5", "", 0, 2, 8, 1, 1)
AWS_OFFER = Offer("aws", "us-east-1", "use1-az1", "t3.micro", "", 0, 2, 1.0, 1, 1)


class Client:
    """The daemon's side: a key pair and a known_hosts file it fills as it trusts hosts."""

    def __init__(self, directory: Path) -> None:
        self.key = directory / "id_ed25519"
        self.public = write_key_pair(self.key, "skyd-daemon")
        self.known_hosts = directory / "known_hosts"
        self.known_hosts.write_text("")

    async def ssh(self, vm: FakeVm, user: str, command: str) -> tuple[int, str]:
        with self.known_hosts.open("a") as hosts:
            hosts.write(vm.known_hosts_line() + "\n")
        proc = await asyncio.create_subprocess_exec(
            *vm.ssh_argv(user, self.key, self.known_hosts),
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode or 0, out.decode()


@pytest.fixture
def machines() -> Iterator[FakeVmHost]:
    host = FakeVmHost()
    yield host
    host.close()
    assert host.running() == []


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(tmp_path)


async def _up(machines: FakeVmHost, instance: Instance) -> FakeVm:
    assert instance.public_ip is not None
    vm = machines.by_address(instance.public_ip)
    assert instance.private_ip == vm.address
    assert instance.ssh_user in vm.logins  # the provider says who to log in as
    await asyncio.to_thread(vm.wait_up, 30)
    return vm


async def _proves_machine(client: Client, vm: FakeVm, user: str) -> None:
    """Logs in as `user` only, runs in the VM's own home, and the VM's halt kills a
    daemonized process started over SSH."""
    code, out = await client.ssh(
        vm, user, "echo $(id -un) $PWD; setsid sleep 600 >/dev/null 2>&1 &"
    )
    assert code == 0, out
    assert out.split() == [user, str(vm.home(user))]
    code, out = await client.ssh(vm, "root", "true")
    assert code == 255 and "Permission denied" in out
    assert len(vm.processes()) >= 2  # the sshd and the detached sleep


async def _gone(client: Client, vm: FakeVm, user: str) -> None:
    assert vm.processes() == []
    code, out = await client.ssh(vm, user, "true")
    assert code == 255 and "refused" in out


async def test_gce_instance_runs_sshd_for_its_ssh_keys_metadata(
    machines: FakeVmHost, client: Client
) -> None:
    fake = FakeGce(machines=machines)
    await fake.start()
    provider = GcpProvider(
        GcpConfig(
            project="lab",
            endpoint=fake.endpoint,
            anonymous=True,
            ssh_public_key=client.public,
        )
    )
    try:
        [inst] = await provider.launch(request_for(GCE_OFFER, spot=True, job_id=1))
        states = await until_state(provider, [inst.instance_id], InstanceState.RUNNING)
        assert states
        [inst] = await provider.instances({"skyd-job": "1"})
        vm = await _up(machines, inst)
        await _proves_machine(client, vm, "skyd")  # gcp.ssh_user's default
        zone, name = gce_key(inst.instance_id)
        fake.preempt("lab", zone, name)
        await _gone(client, vm, "skyd")
        assert vm.state == "destroyed"  # termination action DELETE
    finally:
        await provider.aclose()
        await fake.stop()


async def test_azure_vm_runs_sshd_for_its_os_profile(
    machines: FakeVmHost, client: Client, tmp_path: Path
) -> None:
    fake = FakeAzure(tmp_path, machines=machines)
    await fake.start()
    provider = AzureProvider(
        AzureConfig(
            subscription_id="00000000-0000-0000-0000-000000000001",
            resource_group="lab",
            base_url=fake.base_url,
            ca_file=str(fake.ca_file),
            admin_username="azureuser",
            ssh_public_key=client.public,
            poll_interval_s=0,
        ),
        credential=StaticTokenCredential(),
        clock=VirtualClock(),
    )
    try:
        [launched] = await provider.launch(request_for(AZURE_OFFER, spot=True, job_id=2))
        await until_state(provider, [launched.instance_id], InstanceState.RUNNING)
        vm = await _up(machines, launched)
        await _proves_machine(client, vm, "azureuser")
        fake.evict(*azure_key(launched.instance_id))  # Deallocate: the disk stays
        await _gone(client, vm, "azureuser")
        assert vm.state == "down"
        await provider.terminate([launched.instance_id])
        assert vm.state == "destroyed"
    finally:
        await provider.aclose()
        await fake.stop()


@pytest.fixture
async def moto_proxy(
    moto_server: MotoServerThread, machines: FakeVmHost, aws_test_credentials: None
) -> AsyncIterator[MotoEc2]:
    users = {AWS_TEST_IMAGE: "ubuntu"}
    async with fresh_ec2(moto_server, machines=machines, image_users=users) as proxy:
        yield proxy


async def test_ec2_instance_runs_sshd_for_its_key_pair_and_image_user(
    moto_proxy: MotoEc2, machines: FakeVmHost, client: Client
) -> None:
    provider = AwsProvider(
        AwsConfig(
            endpoint_url=moto_proxy.endpoint_url,
            default_image_id=AWS_TEST_IMAGE,
            ssh_public_key=client.public,
            cleanup_timeout_s=0,
        ),
        clock=VirtualClock(),
    )
    try:
        [inst] = await provider.launch(request_for(AWS_OFFER, spot=False, job_id=3))
        await until_state(provider, [inst.instance_id], InstanceState.RUNNING)
        [inst] = await provider.instances({"skyd-job": "3"})
        vm = await _up(machines, inst)
        await _proves_machine(client, vm, "ubuntu")
        await provider.stop([inst.instance_id])
        await _gone(client, vm, "ubuntu")
        await provider.start([inst.instance_id])
        await asyncio.to_thread(vm.wait_up, 30)
        assert vm.host_public_key and vm.boots == 2  # same disk, same host key
        assert (await client.ssh(vm, "ubuntu", "true"))[0] == 0
        await provider.terminate([inst.instance_id])
        assert vm.state == "destroyed" and vm.processes() == []
    finally:
        await provider.aclose()


async def test_sshd_refuses_until_the_boot_delay_is_over(tmp_path: Path, client: Client) -> None:
    host = FakeVmHost(boot_delay_s=3600)
    try:
        vm = host.boot("vm-1", {"ubuntu": [client.public]})
        assert vm.state == "booting"
        code, out = await client.ssh(vm, "ubuntu", "true")
        assert code == 255 and "refused" in out
        await asyncio.to_thread(host.finish_boot, "vm-1")
        assert (await client.ssh(vm, "ubuntu", "echo booted")) == (0, "booted\n")
        (tmp_path / "other").mkdir()
        stranger = Client(tmp_path / "other")  # a key the launch did not deliver
        code, out = await stranger.ssh(vm, "ubuntu", "true")
        assert code == 255 and "Permission denied" in out
    finally:
        host.close()


async def test_a_vm_whose_launch_delivered_no_key_never_accepts_logins(client: Client) -> None:
    host = FakeVmHost()
    try:
        vm = host.boot("vm-2", {})
        with pytest.raises(RuntimeError, match="no login user and public key"):
            await asyncio.to_thread(vm.wait_up, 30)
        assert vm.processes() == []
    finally:
        host.close()


async def test_halting_a_vm_leaves_another_hosts_vm_of_the_same_id_running(client: Client) -> None:
    """Daemons side by side (test processes running at once) name their first instances
    alike: halting one host's VM kills its daemonized processes, not those of another host's
    VM of the same id (found by the session's marker alone: it left the VM's directory)."""
    hosts = [FakeVmHost(), FakeVmHost()]
    try:
        same_id = "us-central1-a/skyd-1-2e6b657566-0"
        vms = [host.boot(same_id, {"ubuntu": [client.public]}) for host in hosts]
        for vm in vms:
            await asyncio.to_thread(vm.wait_up, 30)
            code, out = await client.ssh(vm, "ubuntu", "cd /; setsid sleep 600 >/dev/null 2>&1 &")
            assert code == 0, out
        running = set(vms[1].processes())
        assert len(running) >= 2  # the sshd and the detached sleep
        hosts[0].halt(same_id)
        assert vms[0].processes() == []
        assert set(vms[1].processes()) == running
    finally:
        for host in hosts:
            host.close()

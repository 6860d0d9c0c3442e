"""Three fake clouds whose VMs are real sshd's, and the providers a daemon uses against them.

`CloudWorld` starts moto's EC2 (behind skyd's fault proxy), the fake Compute Engine and the
fake Resource Manager, all sharing one `FakeVmHost` (an OpenSSH sshd per VM on its own
loopback address), writes the daemon's SSH key, and builds the aws, gcp and azure providers
pointed at them with that key delivered the cloud's own way. Used by `scripts/e2e-clouds`
(skyd.testing.e2e_clouds), the daemon tests of the cloud path and bench/cloud_calls.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyd.catalog import Catalog
from skyd.clock import Clock
from skyd.config import Settings
from skyd.model import Instance, InstanceState, Offer
from skyd.providers.base import Provider, managed_tags
from skyd.testing.fake_vm import FakeVmHost, write_key_pair

if TYPE_CHECKING:
    from skyd.testing.daemon import DaemonThread

AWS_IMAGE = "ami-12c6146b"  # an Ubuntu AMI moto knows: its login user is `ubuntu`
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
GCP_PROJECT = "lab"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
AZURE_GROUP = "lab"


class CloudWorld:
    """The fakes and their VMs; `start()` in the event loop that will use the providers."""

    def __init__(
        self, root: Path, *, boot_delay_s: float = 0.5, tools: Mapping[str, str] | None = None
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.key_path = root / "id_ed25519"
        self.public_key = write_key_pair(self.key_path, "skyd-daemon")
        # the VMs' disks in a fresh /tmp directory of their own: their login users must reach
        # them, which a private parent (pytest's tmp_path is 0700) would forbid
        self.machines = FakeVmHost(boot_delay_s=boot_delay_s, tools=tools)
        self.moto: Any = None
        self.ec2: Any = None
        self.gce: Any = None
        self.azure: Any = None

    async def start(self) -> None:
        from skyd.testing.fake_azure import FakeAzure
        from skyd.testing.fake_gce import FakeGce
        from skyd.testing.moto_ec2 import MotoEc2, MotoServerThread

        os.environ.update(AWS_ENV)
        self.moto = MotoServerThread()
        self.moto.start()
        self.ec2 = MotoEc2(self.moto, machines=self.machines, image_users={AWS_IMAGE: "ubuntu"})
        await self.ec2.start()
        self.gce = FakeGce(machines=self.machines)
        await self.gce.start()
        (self.root / "azure").mkdir(exist_ok=True)
        self.azure = FakeAzure(self.root / "azure", machines=self.machines)
        await self.azure.start()

    async def stop(self) -> None:
        for fake in (self.azure, self.gce, self.ec2):
            if fake is not None:
                await fake.stop()
        if self.moto is not None:
            # moto's state is process-global: leave no EC2 resources to a later world (an
            # instance left there answers a later launch with the same client token)
            self.moto.reset()
            self.moto.stop()
        self.machines.close()

    def settings(self, settings: Settings) -> Settings:
        """`settings` with [cloud_ssh] logging in with the world's key."""
        settings.cloud_ssh.key_path = self.key_path
        settings.cloud_ssh.port = self.machines.port  # 2222 where the host's own sshd has 22
        settings.market.poll_aws_spot_prices = False
        return settings

    async def __aenter__(self) -> CloudWorld:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextlib.asynccontextmanager
    async def daemon(
        self, settings: Settings, providers: Mapping[str, Provider] | None = None
    ) -> AsyncIterator[DaemonThread]:
        """`start_daemon`, stopped on the way out."""
        daemon = await self.start_daemon(settings, providers)
        try:
            yield daemon
        finally:
            await asyncio.to_thread(daemon.stop)

    async def start_daemon(
        self, settings: Settings, providers: Mapping[str, Provider] | None = None
    ) -> DaemonThread:
        """A daemon on `settings` (already passed through `self.settings`) whose aws, gcp
        and azure providers are the world's (`providers`, if the caller holds them),
        started in its thread."""
        from skyd.daemon import Daemon
        from skyd.testing.daemon import DaemonThread

        daemon = DaemonThread(settings)
        if providers is None:
            providers = self.providers(Catalog.load(settings.catalog_dir))
        daemon.daemon = Daemon(settings, providers=providers)
        await asyncio.to_thread(daemon.start)
        return daemon

    def providers(self, catalog: Catalog, clock: Clock | None = None) -> dict[str, Provider]:
        """aws, gcp and azure providers against the fakes, the key delivered at launch."""
        from skyd.providers.aws import AwsConfig, AwsProvider
        from skyd.providers.azure import AzureConfig, AzureProvider
        from skyd.providers.gcp import GcpConfig, GcpProvider
        from skyd.testing.fake_azure import StaticTokenCredential

        def offers(cloud: str) -> Sequence[Offer]:
            return [o for o in catalog.offers if o.cloud == cloud]

        return {
            "aws": AwsProvider(
                AwsConfig(
                    regions=("us-east-1",),
                    endpoint_url=self.ec2.endpoint_url,
                    default_image_id=AWS_IMAGE,
                    ssh_public_key=self.public_key,
                    cleanup_timeout_s=0.0,
                ),
                clock,
                offers("aws"),
            ),
            "gcp": GcpProvider(
                GcpConfig(
                    project=GCP_PROJECT,
                    endpoint=self.gce.endpoint,
                    anonymous=True,
                    ssh_public_key=self.public_key,
                ),
                clock,
                offers("gcp"),
            ),
            "azure": AzureProvider(
                AzureConfig(
                    subscription_id=AZURE_SUBSCRIPTION,
                    resource_group=AZURE_GROUP,
                    base_url=self.azure.base_url,
                    ca_file=str(self.azure.ca_file),
                    ssh_public_key=self.public_key,
                    poll_interval_s=0,
                ),
                credential=StaticTokenCredential(),
                clock=clock,
                offers=offers("azure"),
            ),
        }

    def preempt(self, instance: Instance) -> None:
        """Take a spot VM back the way its cloud does (its sshd and processes die)."""
        if instance.provider == "aws":
            self.ec2.preempt(instance.instance_id.rpartition("/")[2], instance.region)
        elif instance.provider == "gcp":
            zone, _, name = instance.instance_id.partition("/")
            self.gce.preempt(GCP_PROJECT, zone, name)
        elif instance.provider == "azure":
            group, _, name = instance.instance_id.partition("/")
            self.azure.evict(group, name)
        else:
            raise ValueError(f"no fake cloud for provider {instance.provider!r}")

    async def held(self, providers: dict[str, Provider]) -> list[Instance]:
        """Every skyd-managed instance a fake still holds (not terminated): the leak count."""
        from skyd.providers.base import InstanceLister

        left: list[Instance] = []
        for provider in providers.values():
            if isinstance(provider, InstanceLister):
                for inst in await provider.instances(managed_tags()):
                    if inst.state not in (InstanceState.TERMINATED, InstanceState.PREEMPTED):
                        left.append(inst)
        return left

"""All three fake clouds at once, their VMs real machines, and the daemon config that uses them.

For tests and scripts that run a daemon against AWS, GCP and Azure on one machine:

    async with FakeClouds(tmp_dir, boot_delay_s=1.0) as clouds:
        settings.aws, settings.gcp, settings.azure = clouds.daemon_tables(public_key)
        ... run skyd; its launches become sshd's on 127.x.y.z:22 (clouds.machines) ...
        clouds.preempt(instance)        # a spot interruption the cloud's way
        assert clouds.leftovers() == [] # nothing running in any fake, no sshd left

`public_key` is the daemon's (`[cloud_ssh] key_path` + `.pub`): each adapter delivers it the
cloud's own way (EC2 key pair, GCE ssh-keys metadata, Azure osProfile), and each VM accepts
exactly it, for the user `Instance.ssh_user` names.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from skyd.model import Instance
from skyd.testing.fake_azure import FakeAzure
from skyd.testing.fake_gce import FakeGce
from skyd.testing.fake_vm import FakeVmHost
from skyd.testing.moto_ec2 import MotoEc2, MotoServerThread

GCP_PROJECT = "skyd-lab"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
AZURE_GROUP = "skyd-lab"
AWS_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class FakeClouds:
    """moto's EC2 (behind MotoEc2), FakeGce and FakeAzure sharing one FakeVmHost.

    AWS credentials come from botocore's chain: set AWS_TEST_CREDENTIALS in the
    environment of whatever runs the AWS adapter (the fixture or script does).
    """

    def __init__(self, directory: Path, *, boot_delay_s: float = 0.0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.machines = FakeVmHost(boot_delay_s=boot_delay_s)
        self.moto = MotoServerThread()
        self.ec2: MotoEc2 | None = None
        self.gce = FakeGce(machines=self.machines)
        self.azure = FakeAzure(directory, machines=self.machines)

    async def __aenter__(self) -> FakeClouds:
        import asyncio

        await asyncio.to_thread(self.moto.start)
        await asyncio.to_thread(self.moto.reset)  # moto's state is process-wide
        self.ec2 = MotoEc2(self.moto, machines=self.machines)
        await self.ec2.start()
        await self.gce.start()
        await self.azure.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.ec2 is not None:
            await self.ec2.stop()
        await self.gce.stop()
        await self.azure.stop()
        self.moto.stop()
        self.machines.close()

    def daemon_tables(self, public_key: str, region: str = "us-east-1") -> dict[str, Any]:
        """`[aws]`, `[gcp]` and `[azure]` of a daemon config pointed at these fakes."""
        assert self.ec2 is not None, "use FakeClouds as an async context manager"
        return {
            "aws": {
                "enabled": True,
                "regions": [region],
                "endpoint_url": self.ec2.endpoint_url,
                "ssh_public_key": public_key,
                "cleanup_timeout_s": 0.0,
            },
            "gcp": {
                "enabled": True,
                "project": GCP_PROJECT,
                "endpoint": self.gce.endpoint,
                "anonymous": True,
                "ssh_public_key": public_key,
            },
            "azure": {
                "enabled": True,
                "subscription_id": AZURE_SUBSCRIPTION,
                "resource_group": AZURE_GROUP,
                "base_url": self.azure.base_url,
                "ca_file": str(self.azure.ca_file),
                "static_token": "fake-arm-token",
                "ssh_public_key": public_key,
                "poll_interval_s": 0.0,
            },
        }

    def preempt(self, instance: Instance) -> None:
        """Take a spot instance back as its cloud does (its machine goes down with it)."""
        if instance.cloud == "aws":
            assert self.ec2 is not None
            region, ec2_id = instance.instance_id.split("/", 1)
            self.ec2.preempt(ec2_id, region)
        elif instance.cloud == "gcp":
            zone, name = instance.instance_id.split("/", 1)
            self.gce.preempt(GCP_PROJECT, zone, name)
        else:
            group, name = instance.instance_id.split("/", 1)
            self.azure.evict(group, name)

    def leftovers(self) -> list[str]:
        """Instances still alive in any fake, and fake machines still running an sshd."""
        from moto.ec2.models import ec2_backends

        from skyd.testing.moto_ec2 import MOTO_ACCOUNT_ID

        alive = [
            f"aws:{region}/{inst.id}"
            for region, backend in list(ec2_backends[MOTO_ACCOUNT_ID].items())
            for inst in backend.all_instances()
            if inst.state not in ("terminated", "shutting-down")
        ]
        alive += [f"gcp:{zone}/{name}" for (_, zone, name) in self.gce.instances]
        alive += [f"azure:{group}/{name}" for (group, name) in self.azure.vms]
        alive += [f"machine:{vm.vm_id}" for vm in self.machines.running()]
        return sorted(alive)

"""A launched cloud VM until skyd can log in to it: SSH probes with backoff and jitter up to
the boot deadline, the host key trusted on first use and pinned per instance in the store.

Real VMs report RUNNING well before their sshd lets anyone in (cloud-init writes the login
user's key late in boot), so RUNNING alone never starts a job on a cloud VM.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass

from skyd.clock import Clock
from skyd.config import CloudSshSettings
from skyd.errors import AuthError, ProviderError
from skyd.model import Instance
from skyd.providers.base import TAG_TOKEN, InstanceLister, Provider
from skyd.providers.ssh.connection import HostKeyChangedError, SshConnections
from skyd.runner.ssh_node import cloud_target
from skyd.scheduler.transitions import Journal
from skyd.store.records import InstanceRecord, JobRecord

# Providers whose instances are logged in to over SSH to run the job.
SSH_CLOUDS = frozenset({"aws", "gcp", "azure"})


@dataclass(frozen=True, slots=True)
class Reachable:
    """Every VM of the attempt let skyd in; its host key is pinned."""


@dataclass(frozen=True, slots=True)
class Booting:
    """Not yet: why, for the job's waiting note."""

    reason: str


@dataclass(frozen=True, slots=True)
class BootFailed:
    """Past the boot deadline (or a host key changed): give the VMs back, say why. `final`:
    another VM would fail the same way (skyd's own config), so the job fails at once."""

    reason: str
    final: bool = False


BootOutcome = Reachable | Booting | BootFailed


def with_launch_login(inst: Instance, record: InstanceRecord) -> Instance:
    """`inst` as listed, with the addresses and login user its launch reported where the
    listing leaves them out."""
    data = record.data
    return dataclasses.replace(
        inst,
        public_ip=inst.public_ip or data.get("public_ip"),
        private_ip=inst.private_ip or data.get("private_ip"),
        ssh_user=inst.ssh_user or data.get("ssh_user"),
    )


class BootWait:
    """Probes the VMs of booting attempts, at most once per backoff step per job."""

    def __init__(
        self,
        *,
        clock: Clock,
        providers: Mapping[str, Provider],
        journal: Journal,
        settings: CloudSshSettings,
        connections: SshConnections,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.providers = providers
        self.journal = journal
        self.settings = settings
        self.connections = connections
        self.rng = rng or random.Random()
        self._next: dict[int, tuple[float, int]] = {}  # job -> (next probe at, probes so far)
        self._last_error: dict[int, str] = {}

    async def check(self, job: JobRecord, instances: list[InstanceRecord]) -> BootOutcome:
        now = self.clock.now()
        started = min(i.launched_at for i in instances)
        waited = now - started
        deadline = self.settings.boot_timeout_s
        key_path = self.settings.key_path
        if key_path is None:
            return BootFailed(
                "jobs on cloud VMs need an SSH key to reach them: set [cloud_ssh] key_path "
                "(and user) in skyd's config",
                final=True,
            )
        unpinned = [i for i in instances if not i.data.get("host_key")]
        if not unpinned:
            self._forget(job.id)
            return Reachable()
        next_at, probes = self._next.get(job.id, (0.0, 0))
        if now < next_at and waited < deadline:
            return Booting(self._waiting(job.id))
        provider: object = self.providers.get(instances[0].provider)
        if not isinstance(provider, InstanceLister):
            return BootFailed(f"the {instances[0].provider} provider cannot list its instances")
        try:
            found = {
                i.instance_id: i
                for i in await provider.instances({TAG_TOKEN: instances[0].client_token})
            }
            for record in unpinned:
                inst = found.get(record.instance_id)
                if inst is None:
                    raise ProviderError(f"{record.instance_id} is not listed by its cloud yet")
                inst = with_launch_login(inst, record)
                target = cloud_target(
                    inst,
                    user=self.settings.user,
                    key_path=key_path,
                    known_hosts=self.settings.known_hosts,
                    port=self.settings.port,
                )
                host_key = await self.connections.first_contact(target)
                self.journal.pin_host_key(
                    record.provider, record.instance_id, host_key, target.host
                )
        except HostKeyChangedError as exc:
            return BootFailed(exc.message)
        except (AuthError, ProviderError) as exc:
            # refused, timed out, or the login's key not installed yet: all part of booting
            self._last_error[job.id] = exc.message
            if waited >= deadline:
                self._forget(job.id)
                return BootFailed(
                    f"no SSH login within the {deadline:g} s boot deadline ([cloud_ssh] "
                    f"boot_timeout_s); last error: {exc.message}"
                )
            delay = min(self.settings.probe_backoff_max_s, 2.0**probes)
            self._next[job.id] = (now + delay * self.rng.uniform(0.5, 1.0), probes + 1)
            return Booting(self._waiting(job.id))
        self._forget(job.id)
        return Reachable()

    def _waiting(self, job_id: int) -> str:
        last = self._last_error.get(job_id)
        detail = f"; last try: {last}" if last else ""
        return (
            f"booting: waiting for SSH (boot deadline {self.settings.boot_timeout_s:g} s){detail}"
        )

    def _forget(self, job_id: int) -> None:
        self._next.pop(job_id, None)
        self._last_error.pop(job_id, None)

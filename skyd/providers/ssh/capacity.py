"""What an ssh pool host offers and how many nodes of a task fit in what its jobs leave free."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from skyd.model import LaunchRequest, Offer
from skyd.providers.ssh.config import SshHost
from skyd.providers.ssh.connection import SshTarget

SSH_CLOUD = "ssh"
SSH_REGION = "lab"


def nodes_fit(
    host: SshHost,
    offer: Offer,
    slots: int,
    used_gpus: Mapping[str, int],
    ask: LaunchRequest | None = None,
    usage: HostUsage | None = None,
) -> int:
    """How many nodes of `offer` fit in `slots` job slots of `host`, its free GPUs and
    (for a task that asks `cpus:` / `memory:`) the CPUs and memory other jobs do not hold."""
    fit = max(0, slots)
    if offer.accelerator_count:
        free = host.gpus.get(offer.accelerator_name, 0) - used_gpus.get(offer.accelerator_name, 0)
        fit = min(fit, free // offer.accelerator_count)
    if ask is not None:
        held_cpus = usage.cpus if usage else 0.0
        held_memory = usage.memory_gib if usage else 0.0
        if ask.cpus:
            fit = min(fit, int((host.cpus - held_cpus) // ask.cpus))
        if ask.memory_gib:
            fit = min(fit, int((host.memory_gib - held_memory) // ask.memory_gib))
    return max(0, fit)


def target_of(host: SshHost) -> SshTarget:
    return SshTarget(
        name=host.name,
        host=host.host,
        port=host.port,
        user=host.user,
        key_path=host.key_path,
        known_hosts=host.known_hosts,
    )


def host_offers(host: SshHost) -> list[Offer]:
    """The whole host, plus a share per GPU count below the total (and a CPU-only share),
    because a catalog match needs the exact accelerator count a job asks for."""

    def offer(instance_type: str, gpu: str, count: int) -> Offer:
        return Offer(
            cloud=SSH_CLOUD,
            region=SSH_REGION,
            zone=host.name,
            instance_type=instance_type,
            accelerator_name=gpu,
            accelerator_count=count,
            vcpus=host.cpus,
            memory_gib=host.memory_gib,
            price_micros=host.hourly_price_micros,
            spot_price_micros=None,
        )

    offers = [offer(host.name, gpu, count) for gpu, count in host.gpus.items()]
    if not offers or len(host.gpus) > 1:
        offers.insert(0, offer(host.name, "", 0))
    for gpu, count in host.gpus.items():
        offers.extend(offer(f"{host.name}-{gpu}x{k}", gpu, k) for k in range(1, count))
    if host.gpus:
        offers.append(offer(f"{host.name}-cpu", "", 0))
    return offers


@dataclass(frozen=True, slots=True)
class HostUsage:
    """What is held on one host right now."""

    host: str
    jobs: int
    max_jobs: int
    gpus: Mapping[str, int]
    gpus_total: Mapping[str, int]
    down: bool
    cpus: float = 0.0  # held by tasks that asked `cpus:` / `memory:`
    memory_gib: float = 0.0

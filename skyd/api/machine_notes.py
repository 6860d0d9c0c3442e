"""What became of a task's machine settings where it runs — open ports and their endpoints,
the disk its disk_tier chose, network_tier — for `skyctl show` (never silently dropped)."""

from __future__ import annotations

from collections.abc import Sequence

from skyd.model import Offer
from skyd.providers.ports import OPENS_PORTS
from skyd.providers.tiers import disk_note, network_note
from skyd.spec import TaskSpec
from skyd.store.instances import ACTIVE_INSTANCE_STATES
from skyd.store.records import InstanceRecord, JobRecord

_HOW = {
    "aws": "ingress rules on the job's security group",
    "gcp": "a firewall rule on the instances' network tag",
    "azure": "security rules on each VM's network security group",
}


def machine_notes(
    job: JobRecord,
    spec: TaskSpec,
    instances: Sequence[InstanceRecord],
    offer: Offer | None = None,
) -> dict[str, object]:
    """`offer`: the placed offering (from the catalog), to say what network_tier became."""
    placement = job.placement or {}
    provider = placement.get("provider")
    if not isinstance(provider, str):
        return {}
    asked = next((a for a in spec.alternatives if a.ports), spec.resources)
    notes: dict[str, object] = {}
    if asked.ports:
        if provider in OPENS_PORTS:
            live = [
                i
                for i in instances
                if i.attempt == job.attempt and i.state in ACTIVE_INSTANCE_STATES
            ]
            notes["ports_open"] = f"open to 0.0.0.0/0 (tcp) by {_HOW[provider]}" + (
                "" if live else "; closed (no machine now)"
            )
            # where skyd reached each machine (its address then), else what the launch said
            addresses = [
                str(i.data.get("address") or i.data.get("public_ip"))
                for i in live
                if i.data.get("address") or i.data.get("public_ip")
            ]
            notes["endpoints"] = [f"{ip}:{port}" for ip in addresses for port in asked.ports]
        else:
            notes["ports_open"] = (
                f"not applicable on {provider}: skyd opens ports only on cloud VMs "
                "(aws, gcp, azure); nothing was opened"
            )
    tiers = next((a for a in spec.alternatives if a.disk_tier or a.network_tier), spec.resources)
    disk = disk_note(provider, tiers.disk_tier, str(placement.get("instance_type") or ""))
    if disk:
        notes["disk"] = disk
    network = network_note(str(placement.get("cloud") or provider), tiers.network_tier, offer)
    if network:
        notes["network"] = network
    return notes

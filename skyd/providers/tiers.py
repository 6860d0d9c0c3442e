"""`disk_tier` on each cloud's own disk types (SkyPilot's tiers: low, medium, high, ultra,
best), and what `skyctl show` says of a tier or `network_tier` a provider cannot honour.

AWS: EBS gp3 with provisioned IOPS/throughput for medium and high, io2 for ultra and best,
magnetic `standard` for low (SkyPilot's choices). GCE: pd-standard / pd-balanced / pd-ssd /
pd-extreme (pd-extreme only on the machine types that can attach it; `best` falls back to
pd-ssd on the others). Azure: Standard_LRS / StandardSSD_LRS / Premium_LRS (Premium only on
sizes with premium storage); Azure's Ultra disks cannot be OS disks, so `ultra` does not
apply there.

`network_tier: best` (skyd.catalog.network_tier says where it can be had; placement leaves
the other offerings out): AWS attaches the primary interface as an EFA (`InterfaceType:
efa`); GCE boots with a gVNIC and `networkPerformanceConfig.totalEgressBandwidthTier:
TIER_1`; Azure creates the NIC with `enableAcceleratedNetworking`. Lab pools (local, ssh,
slurm, kubernetes) keep the cluster's own network. `standard` (the default) changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from skyd.catalog.network_tier import (
    POOL_BEST,
    aws_efa,
    azure_accelerated,
    best_network,
    gcp_tier1,
)
from skyd.model import POOL_CLOUDS, Offer

DEFAULT_TIER_DISK_GIB = 256  # SkyPilot's default disk size, when a tier is asked without one
_AWS: dict[str, dict[str, Any]] = {
    "low": {"VolumeType": "standard"},
    "medium": {"VolumeType": "gp3", "Iops": 3500, "Throughput": 250},
    "high": {"VolumeType": "gp3", "Iops": 6000, "Throughput": 500},
    "ultra": {"VolumeType": "io2", "Iops": 20000},
    "best": {"VolumeType": "io2", "Iops": 20000},
}
_GCP = {"low": "pd-standard", "medium": "pd-balanced", "high": "pd-ssd", "ultra": "pd-extreme"}
PD_EXTREME_IOPS = 20000
_PD_EXTREME_MACHINES = re.compile(r"^(n2-(standard|highmem)-(64|80|96|128)|m1-.*|m2-.*|m3-.*)$")
_AZURE = {"low": "Standard_LRS", "medium": "StandardSSD_LRS", "high": "Premium_LRS"}
_AZURE_PREMIUM_SIZE = re.compile(r"^Standard_[A-Z]+\d+[a-z]*s[a-z]*_", re.IGNORECASE)
NOT_MAPPED_PROVIDERS = frozenset({"local", "ssh", "sim", "slurm", "kubernetes"})


def aws_ebs(tier: str | None) -> dict[str, Any] | None:
    """The root volume's EBS settings for the tier (None: the AMI's default volume)."""
    return dict(_AWS[tier]) if tier is not None and tier in _AWS else None


def gcp_disk(tier: str | None, machine_type: str) -> dict[str, Any] | None:
    """`{"type": …, "iops": …}` for the boot disk (None: the configured default type)."""
    if tier is None:
        return None
    extreme_ok = bool(_PD_EXTREME_MACHINES.match(machine_type))
    kind = _GCP.get(tier) or ("pd-extreme" if extreme_ok else "pd-ssd")  # best
    if kind == "pd-extreme":
        return {"type": kind, "iops": PD_EXTREME_IOPS}
    return {"type": kind}


def azure_disk(tier: str | None, vm_size: str) -> str | None:
    """The OS disk's storageAccountType (None: the default, or the tier does not apply)."""
    premium = bool(_AZURE_PREMIUM_SIZE.match(vm_size))
    if tier == "best":
        return "Premium_LRS" if premium else "StandardSSD_LRS"
    kind = _AZURE.get(tier or "")
    if kind == "Premium_LRS" and not premium:
        return None
    return kind


def disk_note(provider: str, tier: str | None, instance_type: str) -> str | None:
    """What the tier became on this provider, in words (None: no tier asked)."""
    if tier is None:
        return None
    if provider == "aws":
        ebs = aws_ebs(tier) or {}
        extras = ", ".join(f"{k.lower()} {v}" for k, v in ebs.items() if k != "VolumeType")
        return f"EBS {ebs.get('VolumeType')}" + (f" ({extras})" if extras else "")
    if provider == "gcp":
        disk = gcp_disk(tier, instance_type.split("+")[0]) or {}
        return str(disk.get("type")) + (f" ({disk['iops']} IOPS)" if "iops" in disk else "")
    if provider == "azure":
        kind = azure_disk(tier, instance_type)
        if kind is not None:
            return kind
        why = (
            "Ultra disks cannot be OS disks"
            if tier == "ultra"
            else f"{instance_type} has no premium storage"
        )
        return f"not applicable on azure ({why}); the default StandardSSD_LRS disk is used"
    return f"not applicable on {provider} (skyd does not choose its disks)"


def wants_efa(tier: str | None, offer: Offer) -> bool:
    """AWS: attach the primary network interface as an EFA."""
    return tier == "best" and aws_efa(offer.instance_type)


def wants_tier1(tier: str | None, offer: Offer) -> bool:
    """GCE: boot with a gVNIC and Tier_1 egress bandwidth."""
    return tier == "best" and gcp_tier1(offer.instance_type, offer.vcpus)


def wants_accelerated(tier: str | None, offer: Offer) -> bool:
    """Azure: create the NIC with accelerated networking."""
    return tier == "best" and azure_accelerated(offer.instance_type, offer.vcpus)


def network_note(provider: str, tier: str | None, offer: Offer | None = None) -> str | None:
    """What the network tier became on this provider and offering, in words."""
    if tier is None or tier == "standard":
        return None if tier is None else "standard (the provider's default networking)"
    if provider in POOL_CLOUDS or (offer is not None and offer.cloud in POOL_CLOUDS):
        return POOL_BEST
    became = best_network(offer) if offer is not None else None
    if became is not None:
        return became
    return f"not applicable on {provider}: the default networking is used"

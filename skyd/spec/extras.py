"""What a task asks of its machines beyond the offer: container image, open ports, disk and
network tiers — read from the resources alternative that the chosen offer satisfies."""

from __future__ import annotations

from typing import Any

from skyd.model import Offer
from skyd.spec.resources import ResourcesSpec
from skyd.spec.task import TaskSpec


def alternative_for(spec: TaskSpec, offer: Offer) -> ResourcesSpec:
    """The alternative the placement used: the first whose location admits the offer
    (alternatives naming another cloud or region cannot have produced it)."""
    for alt in spec.alternatives:
        if alt.cloud not in (None, offer.cloud):
            continue
        if alt.region not in (None, offer.region) or alt.zone not in (None, offer.zone):
            continue
        if alt.instance_type not in (None, offer.instance_type):
            continue
        return alt
    return spec.alternatives[0]


def launch_extras(spec: TaskSpec, offer: Offer) -> dict[str, Any]:
    """The LaunchRequest fields for these asks (keyword arguments)."""
    alt = alternative_for(spec, offer)
    return {
        "container_image": alt.docker_image,
        "ports": alt.ports,
        "disk_tier": alt.disk_tier,
        "network_tier": alt.network_tier,
        "cpus": alt.cpus.value if alt.cpus is not None else None,
        "memory_gib": alt.memory_gib.value if alt.memory_gib is not None else None,
    }

"""EFA rules EC2 enforces on RunInstances' network interfaces and moto does not: an
interface of type `efa` only on the instance types that take one.

Spec: the EC2 user guide's EFA "Supported instance types" list, kept with its source in
skyd.catalog.network_tier.AWS_EFA_TYPES. What EC2 answers otherwise: the console's wording
for attaching an EFA to such a type is "t2.micro instances do not support Elastic Fabric
Adapters." (quoted in devopsacademyau/academy#277); the error code for RunInstances is
approximated as InvalidParameterCombination.
"""

from __future__ import annotations

from collections.abc import Mapping

from skyd.catalog.network_tier import AWS_EFA_TYPES

INTERFACE_TYPES = ("interface", "efa", "efa-only", "branch", "trunk")


def check_network_interfaces(form: Mapping[str, str]) -> tuple[str, str] | None:
    """(code, message) of the first network interface EC2 would refuse, or None."""
    instance_type = form.get("InstanceType", "m1.small")
    index = 1
    while any(k.startswith(f"NetworkInterface.{index}.") for k in form):
        kind = form.get(f"NetworkInterface.{index}.InterfaceType")
        if kind is not None and kind not in INTERFACE_TYPES:
            return (
                "InvalidParameterValue",
                f"Value ({kind}) for parameter interfaceType is invalid. "
                f"Valid values: {', '.join(INTERFACE_TYPES)}.",
            )
        if kind in ("efa", "efa-only") and instance_type not in AWS_EFA_TYPES:
            return (
                "InvalidParameterCombination",
                f"{instance_type} instances do not support Elastic Fabric Adapters.",
            )
        index += 1
    return None

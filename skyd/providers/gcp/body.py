"""The Instance resource of one GCE insert: machine, boot disk, NIC, GPUs, ssh key, spot."""

from __future__ import annotations

from typing import Any

from skyd.catalog.instance_types import GCE_ATTACHED_GPU_SEPARATOR, gce_machine_type
from skyd.model import LaunchRequest
from skyd.providers.base import launch_tags
from skyd.providers.gcp.accelerators import accelerator_type
from skyd.providers.gcp.config import GcpConfig
from skyd.providers.gcp.firewalls import rule_name
from skyd.providers.gcp.labels import labels_for
from skyd.providers.tiers import gcp_disk, wants_tier1


def instance_body(cfg: GcpConfig, request: LaunchRequest, zone: str, name: str) -> dict[str, Any]:
    """The compute_v1.Instance fields of node `name` of `request` in `zone`."""
    tags = launch_tags(request)
    nic: dict[str, Any] = {"network": cfg.network}
    if cfg.subnetwork:
        nic["subnetwork"] = cfg.subnetwork
    if cfg.external_ip:
        nic["access_configs"] = [{"name": "External NAT", "type_": "ONE_TO_ONE_NAT"}]
    offer = request.offer
    machine = gce_machine_type(offer.instance_type)
    disk = gcp_disk(request.disk_tier, machine) or {"type": cfg.disk_type}
    body: dict[str, Any] = {
        "name": name,
        # Catalog N1+GPU offers read 'n1-standard-4+T4x1': the base machine type, with
        # the GPUs attached as guestAccelerators below.
        "machine_type": f"zones/{zone}/machineTypes/{machine}",
        "labels": labels_for(tags),
        "disks": [
            {
                "boot": True,
                "auto_delete": True,
                "initialize_params": {
                    "source_image": cfg.gpu_image if offer.accelerator_count else cfg.image,
                    "disk_size_gb": request.disk_size_gib or cfg.disk_size_gib,
                    "disk_type": f"zones/{zone}/diskTypes/{disk['type']}",
                    **({"provisioned_iops": disk["iops"]} if "iops" in disk else {}),
                    "labels": labels_for(tags),
                },
            }
        ],
        "network_interfaces": [nic],
    }
    if wants_tier1(request.network_tier, offer):  # network_tier: best (tiers.py)
        nic["nic_type"] = "GVNIC"
        body["network_performance_config"] = {"total_egress_bandwidth_tier": "TIER_1"}
    if request.ports:
        body["tags"] = {"items": [rule_name(name)]}  # what the port rule targets
    if GCE_ATTACHED_GPU_SEPARATOR in offer.instance_type and offer.accelerator_count:
        body["guest_accelerators"] = [
            {
                "accelerator_type": (
                    f"zones/{zone}/acceleratorTypes/{accelerator_type(offer.accelerator_name)}"
                ),
                "accelerator_count": offer.accelerator_count,
            }
        ]
    if cfg.ssh_public_key:
        body["metadata"] = {
            "items": [{"key": "ssh-keys", "value": f"{cfg.ssh_user}:{cfg.ssh_public_key}"}]
        }
    if request.spot:
        body["scheduling"] = {
            "provisioning_model": "SPOT",
            "instance_termination_action": cfg.spot_termination_action,
            "automatic_restart": False,
            "on_host_maintenance": "TERMINATE",
        }
    elif offer.accelerator_count:
        # GPU VMs cannot live-migrate.
        body["scheduling"] = {"on_host_maintenance": "TERMINATE"}
    return body

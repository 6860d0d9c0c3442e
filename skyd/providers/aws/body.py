"""The RunInstances parameters of an AWS launch (network, tags, placement, spot, root volume)."""

from __future__ import annotations

from typing import Any

from skyd.model import LaunchRequest
from skyd.providers.aws.images import Image
from skyd.providers.aws.network import tag_list
from skyd.providers.tiers import DEFAULT_TIER_DISK_GIB, aws_ebs, wants_efa


def run_instances_params(
    request: LaunchRequest,
    image: Image,
    *,
    token: str,
    tags: dict[str, str],
    subnet_id: str,
    group_id: str,
    public_ip: bool,
    zone_name: str | None,
    placement_group: str | None,
    key_name: str | None,
) -> dict[str, Any]:
    """RunInstances' keyword arguments for `request`'s nodes, all in one call."""
    offer = request.offer
    params: dict[str, Any] = {
        "ImageId": image.image_id,
        "InstanceType": offer.instance_type,
        "MinCount": request.num_nodes,
        "MaxCount": request.num_nodes,
        "ClientToken": token,
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": [group_id],
                "AssociatePublicIpAddress": public_ip,
                "DeleteOnTermination": True,
            }
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list(tags)},
            {"ResourceType": "volume", "Tags": tag_list(tags)},
        ],
    }
    if wants_efa(request.network_tier, offer):  # network_tier: best (tiers.py)
        params["NetworkInterfaces"][0]["InterfaceType"] = "efa"
    if zone_name:
        params["Placement"] = {"AvailabilityZone": zone_name}
    if placement_group is not None:
        params.setdefault("Placement", {})["GroupName"] = placement_group
    if key_name:
        params["KeyName"] = key_name
    if request.spot:
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            },
        }
    ebs = aws_ebs(request.disk_tier)  # disk_tier: skyd.providers.tiers
    if request.disk_size_gib or ebs:
        size = request.disk_size_gib or DEFAULT_TIER_DISK_GIB
        params["BlockDeviceMappings"] = [
            {
                "DeviceName": image.root_device_name,
                "Ebs": {"VolumeSize": size, "DeleteOnTermination": True, **(ebs or {})},
            }
        ]
    return params

"""The request bodies the Azure adapter PUTs: the VM (image, disk, the key in osProfile, spot
settings) and its network security group (SSH from the configured CIDRs only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from skyd.model import LaunchRequest, Offer
from skyd.providers.azure.config import AzureConfig
from skyd.providers.tiers import azure_disk


def image_reference(cfg: AzureConfig, offer: Offer) -> dict[str, str]:
    """The GPU image for GPU offers (NVIDIA driver preinstalled), the configured one otherwise."""
    if offer.accelerator_count:
        return {
            "publisher": cfg.gpu_image_publisher,
            "offer": cfg.gpu_image_offer,
            "sku": cfg.gpu_image_sku,
            "version": "latest",
        }
    return {
        "publisher": cfg.image_publisher,
        "offer": cfg.image_offer,
        "sku": cfg.image_sku,
        "version": cfg.image_version,
    }


def nsg_body(
    cfg: AzureConfig, region: str, tags: Mapping[str, str], ports: Sequence[str] = ()
) -> dict[str, Any]:
    """SSH in from the configured CIDRs only, and the task's `resources.ports` from anywhere;
    Azure's default rules deny other inbound."""
    body = {
        "location": region,
        "tags": dict(tags),
        "properties": {
            "securityRules": [
                {
                    "name": "skyd-ssh",
                    "properties": {
                        "protocol": "Tcp",
                        "sourcePortRange": "*",
                        "destinationPortRange": "22",
                        "sourceAddressPrefixes": list(cfg.ssh_ingress_cidrs),
                        "destinationAddressPrefix": "*",
                        "access": "Allow",
                        "priority": 1000,
                        "direction": "Inbound",
                    },
                }
            ]
        },
    }
    rules: list[dict[str, Any]] = body["properties"]["securityRules"]  # type: ignore[index]
    for index, port in enumerate(ports):
        rules.append(
            {
                "name": f"skyd-port-{port}",
                "properties": {
                    "protocol": "Tcp",
                    "sourcePortRange": "*",
                    "destinationPortRange": port,
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": "*",
                    "access": "Allow",
                    "priority": 1010 + index,
                    "direction": "Inbound",
                },
            }
        )
    return body


def vm_body(
    cfg: AzureConfig,
    request: LaunchRequest,
    name: str,
    nic_path: str,
    tags: Mapping[str, str],
    zones: list[str],
) -> dict[str, Any]:
    os_disk: dict[str, Any] = {
        "createOption": "FromImage",
        "deleteOption": "Delete",
        # disk_tier where the size takes it (skyd.providers.tiers), else Standard SSD
        "managedDisk": {
            "storageAccountType": azure_disk(request.disk_tier, request.offer.instance_type)
            or "StandardSSD_LRS"
        },
    }
    if request.disk_size_gib:
        os_disk["diskSizeGB"] = request.disk_size_gib
    properties: dict[str, Any] = {
        "hardwareProfile": {"vmSize": request.offer.instance_type},
        "storageProfile": {
            "imageReference": image_reference(cfg, request.offer),
            "osDisk": os_disk,
        },
        "osProfile": {
            "computerName": name,
            "adminUsername": cfg.admin_username,
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [
                        {
                            "path": f"/home/{cfg.admin_username}/.ssh/authorized_keys",
                            "keyData": cfg.ssh_public_key,
                        }
                    ]
                },
            },
        },
        "networkProfile": {
            "networkInterfaces": [
                {"id": nic_path, "properties": {"primary": True, "deleteOption": "Delete"}}
            ]
        },
    }
    if request.spot:
        properties["priority"] = "Spot"
        properties["evictionPolicy"] = cfg.eviction_policy
        properties["billingProfile"] = {"maxPrice": cfg.spot_max_price}
    body: dict[str, Any] = {
        "location": request.offer.region,
        "tags": dict(tags),
        "properties": properties,
    }
    if zones:
        body["zones"] = zones
    return body


class StaticToken:
    """An AsyncTokenCredential handing out azure.static_token (a local fake's endpoint)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import time

        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

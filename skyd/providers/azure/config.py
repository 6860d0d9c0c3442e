"""Typed settings of the Azure adapter, validated when built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class AzureConfig:
    """Where and how the Azure adapter launches.

    Credentials come from azure-identity's DefaultAzureCredential (environment, managed
    identity, Azure CLI, …) unless the provider is handed a credential explicitly.
    The resource group and the virtual network/subnet must already exist.
    """

    subscription_id: str
    resource_group: str
    virtual_network: str = "skyd-vnet"
    subnet: str = "default"
    base_url: str | None = None  # None = the public cloud's Resource Manager
    ca_file: str | None = None  # extra CA bundle to trust (a local fake's certificate)
    # A fixed bearer token instead of DefaultAzureCredential: only for a local fake endpoint
    # (base_url on loopback), as gcp.anonymous is.
    static_token: str | None = None
    admin_username: str = "skyd"
    ssh_public_key: str | None = None
    image_publisher: str = "Canonical"
    image_offer: str = "ubuntu-24_04-lts"
    image_sku: str = "server"
    image_version: str = "latest"
    # GPU offers boot the Ubuntu HPC image: NVIDIA driver, CUDA and InfiniBand preinstalled.
    gpu_image_publisher: str = "microsoft-dsvm"
    gpu_image_offer: str = "ubuntu-hpc"
    gpu_image_sku: str = "2204"
    # Each VM gets a network security group allowing SSH (port 22) from these only.
    ssh_ingress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    public_ip: bool = True
    eviction_policy: Literal["Delete", "Deallocate"] = "Deallocate"
    spot_max_price: float = -1.0  # -1: pay up to the on-demand price, never evicted for price
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 60.0
    poll_interval_s: float = 5.0  # used when ARM sends no Retry-After
    operation_timeout_s: float = 900.0
    # The api-version azure-mgmt-network sends for these resources (the adapter calls the
    # Network provider over the same pipeline as plain ARM REST).
    network_api_version: str = "2026-03-01"
    # The one retry mechanism for ARM calls: azure-core's RetryPolicy (exponential backoff
    # on 408/429/5xx and transport errors, honouring Retry-After).
    retry_total: int = 5
    retry_backoff_factor: float = 0.8
    retry_backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("subscription_id", "resource_group", "virtual_network", "subnet"):
            if not getattr(self, name):
                raise ValueError(f"azure.{name} is required")
        if self.eviction_policy not in ("Delete", "Deallocate"):
            raise ValueError(
                f"azure.eviction_policy must be 'Delete' or 'Deallocate', "
                f"got {self.eviction_policy!r}"
            )
        for name in ("connect_timeout_s", "request_timeout_s", "operation_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"azure.{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.retry_total < 0 or self.retry_backoff_factor < 0:
            raise ValueError(
                f"azure.retry_total and azure.retry_backoff_factor must be >= 0, got "
                f"{self.retry_total!r} and {self.retry_backoff_factor!r}"
            )
        if not self.ssh_ingress_cidrs or any("/" not in c for c in self.ssh_ingress_cidrs):
            raise ValueError(
                "azure.ssh_ingress_cidrs must list CIDR blocks such as '203.0.113.0/24', got "
                f"{self.ssh_ingress_cidrs!r}"
            )
        if self.poll_interval_s < 0:
            raise ValueError(f"azure.poll_interval_s must be >= 0, got {self.poll_interval_s!r}")
        if self.static_token is not None and not (self.base_url or "").startswith(
            ("https://127.", "https://localhost")
        ):
            raise ValueError(
                "azure.static_token is only for a local fake: set azure.base_url to its "
                "https://127.0.0.1:PORT address, or drop static_token to sign in for real"
            )
        if self.base_url is not None and not self.base_url.startswith("https://"):
            raise ValueError(
                f"azure.base_url must be https:// (ARM bearer tokens need TLS), "
                f"got {self.base_url!r}"
            )

    @property
    def subnet_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/virtualNetworks/{self.virtual_network}"
            f"/subnets/{self.subnet}"
        )

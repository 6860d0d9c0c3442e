"""Typed settings of the GCP adapter, validated when built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class GcpConfig:
    """Where and how the GCP adapter launches.

    Credentials: Application Default Credentials unless `credentials_file` names a
    service-account key, or `anonymous` (only for a local fake endpoint).
    """

    project: str
    endpoint: str | None = None  # e.g. "http://127.0.0.1:8123"; None = compute.googleapis.com
    credentials_file: str | None = None
    anonymous: bool = False
    image: str = "projects/debian-cloud/global/images/family/debian-12"
    # GPU offers boot the Deep Learning VM image: NVIDIA driver and CUDA preinstalled.
    gpu_image: str = (
        "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11"
    )
    network: str = "global/networks/default"
    subnetwork: str | None = None
    external_ip: bool = True
    disk_size_gib: int = 50
    disk_type: str = "pd-balanced"
    ssh_user: str = "skyd"
    ssh_public_key: str | None = None
    spot_termination_action: Literal["DELETE", "STOP"] = "DELETE"
    request_timeout_s: float = 30.0
    operation_timeout_s: float = 600.0
    # The one retry mechanism for GCE calls: google-api-core's Retry (exponential backoff
    # with jitter on 429, 5xx, rate-limit reasons and transport errors, up to this long).
    retry_deadline_s: float = 60.0
    retry_initial_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.project:
            raise ValueError("gcp.project is required: the GCP project id to launch in")
        if self.spot_termination_action not in ("DELETE", "STOP"):
            raise ValueError(
                "gcp.spot_termination_action must be 'DELETE' or 'STOP', "
                f"got {self.spot_termination_action!r}"
            )
        for name in ("request_timeout_s", "operation_timeout_s", "retry_initial_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"gcp.{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.retry_deadline_s < 0:
            raise ValueError(f"gcp.retry_deadline_s must be >= 0, got {self.retry_deadline_s!r}")
        if self.disk_size_gib < 10:
            raise ValueError(f"gcp.disk_size_gib must be >= 10, got {self.disk_size_gib!r}")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(
                f"gcp.endpoint must start with http:// or https://, got {self.endpoint!r}"
            )
        if self.anonymous and self.credentials_file:
            raise ValueError("gcp: set either anonymous or credentials_file, not both")

"""Typed settings of the AWS adapter, validated when built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from skyd.providers.aws.images import CPU_IMAGE_PARAMETER, GPU_IMAGE_PARAMETER


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """Where and how the AWS adapter launches.

    Credentials always come from botocore's standard chain (environment, shared
    files / `profile`, SSO, instance metadata); nothing secret lives here.
    `endpoint_url` points every EC2 call elsewhere (moto in tests).
    """

    regions: tuple[str, ...] = ("us-east-1",)
    endpoint_url: str | None = None
    profile: str | None = None
    image_ids: Mapping[str, str] = field(default_factory=dict)  # region -> AMI id
    default_image_id: str | None = None
    gpu_image_ids: Mapping[str, str] = field(default_factory=dict)  # region -> AMI id for GPUs
    # Without image_ids / gpu_image_ids, AWS's public SSM parameters name the current AMI.
    image_parameter: str = CPU_IMAGE_PARAMETER
    gpu_image_parameter: str = GPU_IMAGE_PARAMETER
    ssm_endpoint_url: str | None = None  # default: endpoint_url
    # The VPC to launch into per region (default: the region's default VPC); skyd picks the
    # subnet of that VPC in the offer's zone with the most free addresses.
    vpc_ids: Mapping[str, str] = field(default_factory=dict)
    public_ip: bool = True
    ssh_user: str | None = None  # default: the image's own user (ubuntu, ec2-user, admin)
    ssh_public_key: str | None = None  # OpenSSH public key imported as the job's key pair
    ssh_ingress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 30.0
    # The one retry mechanism for EC2 calls: botocore's `adaptive` mode (exponential backoff
    # with jitter on throttling, 5xx and transport errors, plus a client-side rate limiter
    # once EC2 throttles). The core does not retry these again.
    sdk_max_attempts: int = 3
    cleanup_timeout_s: float = 300.0
    cleanup_poll_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.regions or any(not r for r in self.regions):
            raise ValueError(
                f"aws.regions must list at least one region name, got {self.regions!r}; "
                "e.g. regions = ['us-east-1']"
            )
        for name in ("connect_timeout_s", "request_timeout_s", "cleanup_poll_s"):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"aws.{name} must be > 0 seconds, got {value!r}")
        if self.cleanup_timeout_s < 0:
            raise ValueError(f"aws.cleanup_timeout_s must be >= 0, got {self.cleanup_timeout_s!r}")
        if self.sdk_max_attempts < 1:
            raise ValueError(f"aws.sdk_max_attempts must be >= 1, got {self.sdk_max_attempts!r}")
        if self.endpoint_url is not None and not self.endpoint_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                f"aws.endpoint_url must start with http:// or https://, got {self.endpoint_url!r}"
            )

    def image_for(self, region: str, gpu: bool = False) -> str | None:
        if gpu:
            return self.gpu_image_ids.get(region)
        return self.image_ids.get(region, self.default_image_id)

"""Which AMI an AWS launch boots, its root device and its login user.

Images come from the config (`image_ids` per region, `default_image_id`) or else from AWS's
public SSM parameters, which always name the current AMI of a family in each region: the
Deep Learning Base AMI (NVIDIA driver and CUDA) for GPU offers, Canonical's Ubuntu for the
rest. The root device name and the login user are read from the image itself
(DescribeImages), not assumed."""

from __future__ import annotations

from dataclasses import dataclass

# docs.aws.amazon.com/dlami: "Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)", and Canonical's
# documented parameter for Ubuntu 22.04 server images.
GPU_IMAGE_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
CPU_IMAGE_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
)

# The default user each family of images creates (its documentation); matched in the name.
_USERS = (
    ("ubuntu", "ubuntu"),
    ("debian", "admin"),
    ("amzn", "ec2-user"),
    ("al2023", "ec2-user"),
    ("amazon linux", "ec2-user"),
    ("rhel", "ec2-user"),
    ("centos", "centos"),
)


@dataclass(frozen=True, slots=True)
class Image:
    image_id: str
    name: str
    root_device_name: str
    login_user: str


def login_user_for(name: str, description: str = "", fallback: str = "ubuntu") -> str:
    text = f"{name} {description}".lower()
    return next((user for word, user in _USERS if word in text), fallback)

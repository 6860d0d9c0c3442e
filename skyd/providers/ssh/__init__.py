"""The `ssh` provider: lab machines reached with asyncssh, capacity counted per host."""

from skyd.providers.ssh.capacity import SSH_CLOUD, SSH_REGION, HostUsage
from skyd.providers.ssh.config import SshHost, SshProviderConfig
from skyd.providers.ssh.connection import SshConnections, SshTarget
from skyd.providers.ssh.provider import SshProvider

__all__ = [
    "SSH_CLOUD",
    "SSH_REGION",
    "HostUsage",
    "SshConnections",
    "SshHost",
    "SshProvider",
    "SshProviderConfig",
    "SshTarget",
]

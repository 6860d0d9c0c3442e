"""The machines of an SSH attempt: who they are, how to log in, and each one's job env."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyd.errors import ProviderError
from skyd.model import Instance
from skyd.providers.ssh.connection import SshTarget
from skyd.providers.ssh.layout import run_dir

if TYPE_CHECKING:
    from skyd.providers.ssh.provider import SshProvider

# The daemon's paths mean nothing on the remote machine; the remote account's own apply.
_LOCAL_ONLY_ENV = ("PATH", "HOME", "USER", "SKYD_CHECKPOINT_DIR")


@dataclass(frozen=True, slots=True)
class SshNode:
    """One machine of an attempt: its rank, how to log in, and its remote directory."""

    rank: int
    instance_id: str
    target: SshTarget
    ip: str  # the address the other nodes reach it at (SKYD_NODE_IPS)
    remote_dir: str
    python: str = "python3"

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "instance_id": self.instance_id,
            "target": self.target.to_json(),
            "ip": self.ip,
            "remote_dir": self.remote_dir,
            "python": self.python,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SshNode:
        return cls(
            rank=int(data["rank"]),
            instance_id=str(data["instance_id"]),
            target=SshTarget.from_json(dict(data["target"])),
            ip=str(data["ip"]),
            remote_dir=str(data["remote_dir"]),
            python=str(data.get("python", "python3")),
        )


def ssh_nodes(provider: SshProvider, instance_ids: Sequence[str]) -> list[SshNode]:
    """The nodes of an attempt launched by the ssh provider, ranked in the given order."""
    nodes = []
    for rank, iid in enumerate(instance_ids):
        host = provider.host_config(iid)
        nodes.append(
            SshNode(
                rank=rank,
                instance_id=iid,
                target=provider.target(iid),
                ip=host.host,
                remote_dir=run_dir(host.remote_root, iid),
                python=host.python,
            )
        )
    return nodes


def cloud_nodes(
    instances: Sequence[Instance],
    *,
    user: str,
    key_path: Path,
    known_hosts: Path | None = None,
    remote_root: str = ".skyd",
    python: str = "python3",
    host_keys: Mapping[str, str] | None = None,
    port: int = 22,
) -> list[SshNode]:
    """The nodes of an attempt on cloud VMs: logged in at their public address (private
    when they have none) as the user the provider says the image has (else `user`), checked
    against the host key pinned for each (`host_keys`, by instance id), and reached by the
    others at their private address."""
    nodes = []
    for rank, inst in enumerate(instances):
        nodes.append(
            SshNode(
                rank=rank,
                instance_id=inst.instance_id,
                target=cloud_target(
                    inst,
                    user=user,
                    key_path=key_path,
                    known_hosts=known_hosts,
                    host_key=(host_keys or {}).get(inst.instance_id),
                    port=port,
                ),
                ip=inst.private_ip or inst.public_ip or "",
                remote_dir=run_dir(remote_root, inst.instance_id),
                python=python,
            )
        )
    return nodes


def cloud_target(
    inst: Instance,
    *,
    user: str,
    key_path: Path,
    known_hosts: Path | None = None,
    host_key: str | None = None,
    port: int = 22,
) -> SshTarget:
    """How to log in to one cloud VM (public address first; the image's own user)."""
    address = inst.public_ip or inst.private_ip
    if not address:
        raise ProviderError(f"{inst.instance_id} has no IP address yet; describe it again")
    login = inst.ssh_user or user
    return SshTarget(inst.instance_id, address, port, login, key_path, known_hosts, host_key)


def node_env(base: Mapping[str, str], node: SshNode, nodes: Sequence[SshNode]) -> dict[str, str]:
    """The job's environment on one node: the daemon's view minus local paths, plus its rank."""
    env = {k: v for k, v in base.items() if k not in _LOCAL_ONLY_ENV}
    ips = "\n".join(n.ip for n in sorted(nodes, key=lambda n: n.rank))
    for prefix in ("SKYD", "SKYPILOT"):
        env[f"{prefix}_NODE_RANK"] = str(node.rank)
        env[f"{prefix}_NODE_IPS"] = ips
        env[f"{prefix}_NUM_NODES"] = str(len(nodes))
    return env


def mount_destination(dest: str, remote_dir: str) -> str:
    """Where a file mount lands remotely: `~/x` in the home, `/abs` as is, `x` in the workdir."""
    if dest.startswith("~/"):
        return dest[2:]
    if dest.startswith("/"):
        return dest
    return f"{remote_dir}/workdir/{dest}"

"""`resources.ports` on the providers: which providers open them (cloud VMs, through their own
firewall objects) and the protocol reconcile uses to remove rules whose machines are gone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

# Providers that open a task's ports on its machines; on the others (a lab machine, a
# Slurm node, a pod) skyd cannot, and says so in `skyctl show` instead of ignoring them.
OPENS_PORTS = frozenset({"aws", "gcp", "azure"})


def port_range(port: str) -> tuple[int, int]:
    """ "8080" -> (8080, 8080); "10000-10010" -> (10000, 10010) (as the spec normalized them)."""
    low, _, high = port.partition("-")
    return int(low), int(high or low)


@runtime_checkable
class PortSweeper(Protocol):
    """A provider whose port rules can outlive their machines (a daemon killed between
    deleting the machines and the rule): reconcile asks it to delete those of its daemon,
    except for jobs with a launch in flight."""

    async def sweep_ports(self, daemon_id: str, busy_jobs: Sequence[int]) -> list[str]: ...

"""`resources.ports` on Azure live in each VM's network security group (skyd.providers.azure
.bodies.nsg_body) and go with it at teardown; which NSGs a daemon killed between deleting a
VM and its network resources left behind (the provider's sweep deletes them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from skyd.providers.base import TAG_DAEMON, TAG_JOB

SUFFIX = "-nsg"


def stale_vm_names(
    nsgs: Iterable[Mapping[str, Any]], live: set[str], daemon_id: str, busy_jobs: Sequence[int]
) -> list[str]:
    """The VMs (by name) whose NSG is this daemon's, whose VM is gone and whose job is not
    launching now."""
    busy = {str(j) for j in busy_jobs}
    stale = []
    for nsg in nsgs:
        tags = nsg.get("tags") or {}
        name = str(nsg.get("name", ""))
        if not name.endswith(SUFFIX) or tags.get(TAG_DAEMON) != daemon_id:
            continue
        vm = name[: -len(SUFFIX)]
        if vm not in live and tags.get(TAG_JOB) not in busy:
            stale.append(vm)
    return stale

"""`resources.ports` on GCE: one INGRESS firewall rule per launch, allowing the ports from
anywhere to the instances carrying the rule's network tag (its own name), deleted with them.

Firewall rules carry no labels, so a rule is found again by its name (the instances' name
stem + "-ports") and its description, which names the daemon and job that made it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from skyd.providers.base import TAG_DAEMON, TAG_JOB

SUFFIX = "-ports"
_DESCRIBED = re.compile(r"skyd-daemon=(?P<daemon>\S*) skyd-job=(?P<job>\S*)")


def rule_name(instance_name: str) -> str:
    """`skyd-12-ab34cd56ef-0` -> `skyd-12-ab34cd56ef-ports` (also the network tag)."""
    return instance_name.rsplit("-", 1)[0] + SUFFIX


def rule_body(
    name: str, network: str, ports: Sequence[str], tags: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "name": name,
        "network": network,
        "direction": "INGRESS",
        "priority": 1000,
        "allowed": [{"I_p_protocol": "tcp", "ports": list(ports)}],
        "source_ranges": ["0.0.0.0/0"],
        "target_tags": [name],
        "description": (
            f"skyd: resources.ports of the instances tagged {name} "
            f"skyd-daemon={tags.get(TAG_DAEMON, '')} skyd-job={tags.get(TAG_JOB, '')}"
        ),
    }


class GceFirewalls:
    """Insert / delete / sweep the rules through the SDK's FirewallsClient (REST)."""

    def __init__(
        self,
        project: str,
        network: str,
        clients: Callable[[], Awaitable[tuple[Any, Any]]],
        call: Callable[..., Awaitable[Any]],
        opts: Callable[[], dict[str, Any]],
    ) -> None:
        self.project = project
        self.network = network
        self._clients = clients  # (FirewallsClient, GlobalOperationsClient), built lazily
        self._call = call
        self._opts = opts

    async def open(self, instance_name: str, ports: Sequence[str], tags: Mapping[str, str]) -> str:
        """The rule for these instances (idempotent: an existing one is kept)."""
        from google.api_core import exceptions as gexc
        from google.cloud import compute_v1

        firewalls, operations = await self._clients()
        name = rule_name(instance_name)
        body = compute_v1.Firewall(rule_body(name, self.network, ports, tags))
        try:
            op = await self._call(
                firewalls.insert_unary,
                None,
                project=self.project,
                firewall_resource=body,
                **self._opts(),
            )
        except Exception as exc:
            if isinstance(exc.__cause__, gexc.Conflict):
                return name  # a retried launch: the rule is there
            raise
        await self._call(
            operations.wait, None, project=self.project, operation=op.name, **self._opts()
        )
        return name

    async def close(self, instance_names: Sequence[str]) -> list[str]:
        """Delete the rules of these instances (missing ones are fine)."""
        names = sorted({rule_name(n) for n in instance_names})
        await asyncio.gather(*(self._delete(n) for n in names))
        return names

    async def _delete(self, name: str) -> None:
        from google.api_core import exceptions as gexc

        firewalls, operations = await self._clients()
        try:
            op = await self._call(
                firewalls.delete_unary, None, project=self.project, firewall=name, **self._opts()
            )
        except Exception as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return
            raise
        await self._call(
            operations.wait, None, project=self.project, operation=op.name, **self._opts()
        )

    async def sweep(
        self, live_instance_names: Sequence[str], daemon_id: str, busy_jobs: Sequence[int]
    ) -> list[str]:
        """Delete this daemon's rules whose instances are all gone (not for busy jobs)."""
        firewalls, _ = await self._clients()

        def listing() -> list[Any]:
            return list(firewalls.list(project=self.project, **self._opts()))

        rules = await self._call(listing, None)
        in_use = {rule_name(n) for n in live_instance_names}
        busy = {str(j) for j in busy_jobs}
        stale = []
        for rule in rules:
            described = _DESCRIBED.search(rule.description or "")
            if not rule.name.endswith(SUFFIX) or described is None or rule.name in in_use:
                continue
            if described["daemon"] != daemon_id or described["job"] in busy:
                continue
            stale.append(rule.name)
        await asyncio.gather(*(self._delete(n) for n in stale))
        return stale

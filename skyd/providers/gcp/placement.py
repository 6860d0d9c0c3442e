"""Compact placement for GCE gangs: a regional resource policy with a COLLOCATED group
placement policy, attached to each node through the instance's `resourcePolicies`.

GCE resource policies carry no labels, so skyd's tags ride in the description (a sweep
after a crash reads them there). The policy is named from the attempt's client token, so a
retried launch finds it again. GCE refuses to delete a policy an instance still uses, which
is what keeps a sweep from taking one from under a gang.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from skyd.errors import ProviderError

T = TypeVar("T")

PREFIX = "skyd-pg-"
_DESCRIPTION = "skyd gang placement; tags: "
# Machine series a compact placement policy takes (Compute Engine documentation, "Compact
# placement policies"); E2, N1, N4, T2D and the rest launch without one.
COMPACT_SERIES = frozenset({"a2", "a3", "c2", "c2d", "c3", "c3d", "g2", "h3", "n2", "n2d"})


def policy_name(job_id: int, client_token: str) -> str:
    digest = hashlib.sha256(client_token.encode()).hexdigest()[:10]
    return f"{PREFIX}{job_id}-{digest}"


def why_not_compact(machine_type: str, num_nodes: int) -> str | None:
    """Why a launch goes without a compact placement policy (None: it uses one)."""
    if num_nodes < 2:
        return "a single node needs no placement policy"
    series = machine_type.split("-", 1)[0]
    if series not in COMPACT_SERIES:
        return (
            f"machine series {series} does not support compact placement policies; "
            "launched without one"
        )
    return None


def _in_use(cause: BaseException | None) -> bool:
    """GCE's refusal to delete a policy an instance still uses."""
    reasons = {e.get("reason") for e in getattr(cause, "errors", []) if isinstance(e, dict)}
    return "resourceInUseByAnotherResource" in reasons


def policy_body(name: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": _DESCRIPTION + json.dumps(dict(tags), sort_keys=True),
        "group_placement_policy": {"collocation": "COLLOCATED"},
    }


def tags_of(description: str) -> dict[str, str]:
    if not description.startswith(_DESCRIPTION):
        return {}
    try:
        found = json.loads(description[len(_DESCRIPTION) :])
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class CompactPolicies:
    """resourcePolicies calls through the provider's SDK plumbing (threads, retries, errors)."""

    def __init__(
        self,
        project: str,
        clients: Callable[[], Awaitable[tuple[Any, Any]]],
        call: Callable[..., Awaitable[Any]],
        opts: Callable[[], dict[str, Any]],
    ) -> None:
        self.project = project
        self._clients = clients
        self._call = call
        self._opts = opts
        # a gang's policy by instance id (region, name), and the policies of launches in
        # flight in this process, which a sweep leaves be
        self.used_by: dict[str, tuple[str, str]] = {}
        self.launching: set[tuple[str, str]] = set()

    async def release_after(self, instance_ids: Sequence[str]) -> None:
        """These instances are deleted: a policy none of this process's instances uses
        any more goes too (one a restart forgot is the sweep's)."""
        ended = {self.used_by.pop(key) for key in instance_ids if key in self.used_by}
        for policy in ended - set(self.used_by.values()):
            await self.delete(*policy)

    async def sweep(self, tags: Mapping[str, str]) -> list[str]:
        """Delete skyd's policies carrying `tags` that no instance uses (GCE refuses those
        in use) and no launch of this process is filling."""
        deleted: list[str] = []
        for policy in await self.tagged(tags):
            if policy in self.launching or policy in self.used_by.values():
                continue
            if await self.delete(*policy):
                deleted.append("/".join(policy))
        return deleted

    def link(self, region: str, name: str) -> str:
        return f"projects/{self.project}/regions/{region}/resourcePolicies/{name}"

    async def ensure(self, region: str, name: str, tags: Mapping[str, str]) -> None:
        """Create the policy; one that exists already is this attempt's own (a retry)."""
        from google.api_core import exceptions as gexc
        from google.cloud import compute_v1

        policies, operations = await self._clients()
        request = compute_v1.InsertResourcePolicyRequest(
            project=self.project,
            region=region,
            resource_policy_resource=compute_v1.ResourcePolicy(policy_body(name, tags)),
        )
        try:
            op = await self._call(policies.insert_unary, None, request=request, **self._opts())
        except ProviderError as exc:
            if isinstance(exc.__cause__, gexc.Conflict):
                return
            raise
        await self._done(operations, region, op)

    async def delete(self, region: str, name: str) -> bool:
        """Delete the policy: True once it is gone, False while an instance still uses it."""
        from google.api_core import exceptions as gexc

        policies, operations = await self._clients()
        try:
            op = await self._call(
                policies.delete_unary,
                None,
                project=self.project,
                region=region,
                resource_policy=name,
                **self._opts(),
            )
        except ProviderError as exc:
            if isinstance(exc.__cause__, gexc.NotFound):
                return True
            if _in_use(exc.__cause__):
                return False
            raise
        await self._done(operations, region, op)
        return True

    async def tagged(self, tags: Mapping[str, str]) -> list[tuple[str, str]]:
        """(region, name) of every skyd policy whose tags include `tags`."""
        policies, _ = await self._clients()

        def listing() -> list[tuple[str, str]]:
            out: list[tuple[str, str]] = []
            pages = policies.aggregated_list(project=self.project, **self._opts())
            for scope, scoped in pages:
                region = scope.rsplit("/", 1)[-1]
                for policy in scoped.resource_policies:
                    found = tags_of(policy.description)
                    if policy.name.startswith(PREFIX) and all(
                        found.get(k) == v for k, v in tags.items()
                    ):
                        out.append((region, policy.name))
            return out

        listed: list[tuple[str, str]] = await self._call(listing, None)
        return listed

    async def _done(self, operations: Any, region: str, op: Any) -> None:
        """Wait for a region operation (a policy is usable only once its insert is DONE)."""
        current = op
        for _ in range(100):
            if getattr(current.status, "name", str(current.status)) == "DONE":
                break
            current = await self._call(
                operations.wait,
                None,
                project=self.project,
                region=region,
                operation=op.name,
                **self._opts(),
            )
        if current.error and current.error.errors:
            messages = "; ".join(f"{e.code}: {e.message}" for e in current.error.errors)
            raise ProviderError(
                f"gcp: resource policy in {region}: {messages}", scope=f"gcp/{region}"
            )

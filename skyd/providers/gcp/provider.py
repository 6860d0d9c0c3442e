"""GcpProvider: the Provider Protocol over Compute Engine's REST API (sync SDK, off the loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from skyd.catalog.instance_types import gce_machine_type
from skyd.clock import Clock, SystemClock
from skyd.errors import ProviderError, TransientError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.base import TAG_TOKEN, launch_tags, managed_tags
from skyd.providers.gcp.body import instance_body
from skyd.providers.gcp.clients import client_kwargs
from skyd.providers.gcp.config import GcpConfig
from skyd.providers.gcp.errors import (
    CLOUD,
    region_of,
    translate_exception,
    translate_operation_errors,
)
from skyd.providers.gcp.firewalls import GceFirewalls
from skyd.providers.gcp.instances import (
    PREEMPTED_OPERATION,
    instance_key,
    mark_preempted,
    preemption_suspects,
    split_instance_key,
    state_of,
    tail,
    to_instance,
    with_state,
)
from skyd.providers.gcp.labels import instance_names, label_filter
from skyd.providers.gcp.placement import CompactPolicies, policy_name, why_not_compact
from skyd.providers.gcp.retry import sdk_retry

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = ["GcpProvider", "instance_key", "split_instance_key"]


class GcpProvider:
    """Launches and manages GCE instances; every call runs in a worker thread.

    Operations are awaited with ZoneOperationsClient.wait on the configured endpoint,
    because ExtendedOperation.result() polls the public endpoint whatever the client uses.
    """

    name = "gcp"

    def __init__(
        self, config: GcpConfig, clock: Clock | None = None, offers: Sequence[Offer] = ()
    ) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._offers = tuple(offers)
        self._instances_client: Any = None
        self._operations_client: Any = None
        self._client_lock = asyncio.Lock()
        self._retry: Any = None
        self._firewall_clients: tuple[Any, Any] | None = None
        # resources.ports: a firewall rule per launch (skyd.providers.gcp.firewalls)
        self.firewalls = GceFirewalls(
            config.project, config.network, self._firewalls, self._call, self._opts
        )
        self._policy_clients: tuple[Any, Any] | None = None
        self.policies = CompactPolicies(config.project, self._policy_client, self._call, self._opts)

    def offers(self) -> Sequence[Offer]:
        return self._offers

    # -- plumbing -----------------------------------------------------------------------

    async def _clients(self) -> tuple[Any, Any]:
        async with self._client_lock:
            if self._instances_client is None:
                self._instances_client, self._operations_client = await self._call(
                    self._build_clients, None
                )
        return self._instances_client, self._operations_client

    async def _firewalls(self) -> tuple[Any, Any]:
        from google.cloud import compute_v1

        async with self._client_lock:
            if self._firewall_clients is None:
                kwargs = await self._call(self._client_kwargs, None)
                self._firewall_clients = (
                    compute_v1.FirewallsClient(**kwargs),
                    compute_v1.GlobalOperationsClient(**kwargs),
                )
        return self._firewall_clients

    async def _policy_client(self) -> tuple[Any, Any]:
        async with self._client_lock:
            if self._policy_clients is None:
                self._policy_clients = await self._call(self._build_policy_clients, None)
        return self._policy_clients

    def _build_policy_clients(self) -> tuple[Any, Any]:
        from google.cloud import compute_v1

        kwargs = self._client_kwargs()
        return compute_v1.ResourcePoliciesClient(**kwargs), compute_v1.RegionOperationsClient(
            **kwargs
        )

    def _build_clients(self) -> tuple[Any, Any]:
        from google.cloud import compute_v1

        kwargs = self._client_kwargs()
        return compute_v1.InstancesClient(**kwargs), compute_v1.ZoneOperationsClient(**kwargs)

    def _client_kwargs(self) -> dict[str, Any]:
        return client_kwargs(self.config)

    async def _call(self, fn: Callable[..., T], where: str | None, /, *args: Any, **kw: Any) -> T:
        """Run one blocking SDK call in a thread, its failures as ProviderErrors (zone `where`)."""
        try:
            return await asyncio.to_thread(fn, *args, **kw)
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_exception(exc, where) from exc

    def _opts(self) -> dict[str, Any]:
        if self._retry is None:
            self._retry = sdk_retry(self.config)
        return {"timeout": self.config.request_timeout_s, "retry": self._retry}

    async def _wait(self, operation: Any, zone: str) -> None:
        """Block until a zone operation is DONE; raise its error, if any."""
        _, ops = await self._clients()
        deadline = self._clock.now() + self.config.operation_timeout_s
        current = operation
        while getattr(current.status, "name", str(current.status)) != "DONE":
            if self._clock.now() >= deadline:
                raise TransientError(
                    f"gcp operation {operation.name} not done after "
                    f"{self.config.operation_timeout_s}s",
                    scope=f"{CLOUD}/{region_of(zone)}",
                )
            current = await self._call(
                ops.wait,
                zone,
                project=self.config.project,
                zone=zone,
                operation=operation.name,
                **self._opts(),
            )
        if current.error and current.error.errors:
            raise translate_operation_errors(
                ((e.code, e.message) for e in current.error.errors), zone
            )

    async def check(self) -> str:
        """One cheap authenticated call (`skyctl check`): one page of at most one instance."""
        client, _ = await self._clients()

        def listing() -> None:
            from google.cloud import compute_v1

            query = compute_v1.AggregatedListInstancesRequest(
                project=self.config.project, max_results=1
            )
            next(iter(client.aggregated_list(request=query, **self._opts())), None)

        await self._call(listing, None)
        return f"instances.aggregatedList in project {self.config.project} answered"

    # -- launch -------------------------------------------------------------------------

    def placement_note(self, request: LaunchRequest) -> str:
        machine = gce_machine_type(request.offer.instance_type)
        why_not = why_not_compact(machine, request.num_nodes)
        if why_not is not None:
            return f"no placement policy: {why_not}"
        name = policy_name(request.job_id, request.client_token)
        return f"under compact placement policy {name} (COLLOCATED)"

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        zone = request.offer.zone
        if not zone:
            raise ProviderError(
                f"gcp: offer {request.offer.key} has no zone; GCE launches need one",
                scope=f"{CLOUD}/{request.offer.region}",
            )
        why_not = why_not_compact(gce_machine_type(request.offer.instance_type), request.num_nodes)
        policy = (region_of(zone), policy_name(request.job_id, request.client_token))
        if why_not is not None:
            if request.num_nodes > 1:
                log.info("gcp: job %s attempt %s: %s", request.job_id, request.attempt, why_not)
            return await self._launch(request, zone, None)
        self.policies.launching.add(policy)
        try:
            return await self._launch(request, zone, policy)
        finally:
            self.policies.launching.discard(policy)

    async def _launch(
        self, request: LaunchRequest, zone: str, policy: tuple[str, str] | None
    ) -> list[Instance]:
        names = instance_names(request.job_id, request.client_token, request.num_nodes)
        if policy is not None:
            await self.policies.ensure(*policy, launch_tags(request))
        existing = {
            tail(raw.name): raw
            for raw in await self._list_zone(zone, {TAG_TOKEN: request.client_token})
        }
        missing = [n for n in names if n not in existing]
        if missing:
            outcomes = await asyncio.gather(
                *(self._insert(request, zone, n, policy) for n in missing),
                return_exceptions=True,
            )
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if failures:
                # All nodes or none: a half-launched gang is useless and costs money. Every
                # name goes, since a timed-out insert may still have created its instance.
                with contextlib.suppress(ProviderError):
                    await self._delete_many(zone, names)
                    if policy is not None:
                        await self.policies.delete(*policy)
                raise failures[0]
        instances, _ = await self._clients()
        raws = await asyncio.gather(
            *(
                self._call(
                    instances.get,
                    zone,
                    project=self.config.project,
                    zone=zone,
                    instance=n,
                    **self._opts(),
                )
                for n in names
            )
        )
        if request.ports:
            try:
                await self.firewalls.open(names[0], request.ports, launch_tags(request))
            except ProviderError:
                with contextlib.suppress(ProviderError):  # never machines without their ports
                    await self._delete_many(zone, names)
                    if policy is not None:
                        await self.policies.delete(*policy)
                raise
        launched = [self._instance(raw) for raw in raws]
        if policy is not None:
            self.policies.used_by.update((i.instance_id, policy) for i in launched)
        return launched

    async def _insert(
        self, request: LaunchRequest, zone: str, name: str, policy: tuple[str, str] | None
    ) -> None:
        from google.cloud import compute_v1

        instances, _ = await self._clients()
        body = instance_body(self.config, request, zone, name)
        if policy is not None:
            body["resource_policies"] = [self.policies.link(*policy)]
        resource = compute_v1.Instance(body)
        insert = compute_v1.InsertInstanceRequest(
            project=self.config.project,
            zone=zone,
            instance_resource=resource,
            # Names are what make a retry idempotent (unique per zone); the request id only
            # dedups this one call, so a retry after a failed insert really retries.
            request_id=str(uuid.uuid4()),
        )
        from google.api_core import exceptions as gexc

        try:
            op = await self._call(instances.insert_unary, zone, request=insert, **self._opts())
        except ProviderError as exc:
            if isinstance(exc.__cause__, gexc.Conflict):
                return  # a concurrent or earlier insert of the same name won: not a double
            raise
        await self._wait(op, zone)

    # -- describe -----------------------------------------------------------------------

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        if instance_ids is None:
            found = await self.instances(tags or managed_tags())
            return {inst.instance_id: inst.state for inst in found}
        from google.api_core import exceptions as gexc

        instances, _ = await self._clients()

        async def one(key: str) -> Any:
            zone, name = split_instance_key(key)
            try:
                return await asyncio.to_thread(
                    instances.get,
                    project=self.config.project,
                    zone=zone,
                    instance=name,
                    **self._opts(),
                )
            except gexc.NotFound:
                return None
            except Exception as exc:
                raise translate_exception(exc, zone) from exc

        raws = await asyncio.gather(*(one(k) for k in instance_ids))
        states: dict[str, InstanceState] = {}
        for key, raw in zip(instance_ids, raws, strict=True):
            states[key] = InstanceState.TERMINATED if raw is None else self._state_of(raw)
        await self._mark_preempted(states, {k: r for k, r in zip(instance_ids, raws, strict=True)})
        return states

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        """Every instance carrying all of `tags`, across zones (one aggregatedList)."""
        client, _ = await self._clients()

        def listing() -> list[Any]:
            from google.cloud import compute_v1

            query = compute_v1.AggregatedListInstancesRequest(
                project=self.config.project, filter=label_filter(dict(tags))
            )
            pager = client.aggregated_list(request=query, **self._opts())
            return [inst for _, scoped in pager for inst in scoped.instances]

        raws = await self._call(listing, None)
        found = [self._instance(raw) for raw in raws]
        states = {inst.instance_id: inst.state for inst in found}
        await self._mark_preempted(
            states, {i.instance_id: r for i, r in zip(found, raws, strict=True)}
        )
        return [
            inst
            if states[inst.instance_id] == inst.state
            else with_state(inst, states[inst.instance_id])
            for inst in found
        ]

    async def _list_zone(self, zone: str, tags: Mapping[str, str]) -> list[Any]:
        client, _ = await self._clients()

        def listing() -> list[Any]:
            from google.cloud import compute_v1

            query = compute_v1.ListInstancesRequest(
                project=self.config.project, zone=zone, filter=label_filter(dict(tags))
            )
            pager = client.list(request=query, **self._opts())
            return list(pager)

        return await self._call(listing, zone)

    async def _mark_preempted(
        self, states: dict[str, InstanceState], raws: Mapping[str, Any]
    ) -> None:
        """Spot VMs that are stopped or gone: GCE says why only in its operations log."""
        suspects = preemption_suspects(states, raws)
        if not suspects:
            return
        _, ops = await self._clients()
        for zone, keys in suspects.items():

            def listing(zone: str = zone) -> list[Any]:
                from google.cloud import compute_v1

                query = compute_v1.ListZoneOperationsRequest(
                    project=self.config.project,
                    zone=zone,
                    filter=f'(operationType = "{PREEMPTED_OPERATION}")',
                )
                pager = ops.list(request=query, **self._opts())
                return list(pager)

            preemptions = await self._call(listing, zone)
            mark_preempted(states, keys, raws, preemptions)

    def _state_of(self, raw: Any) -> InstanceState:
        return state_of(raw)

    def _instance(self, raw: Any) -> Instance:
        return to_instance(raw, self.name, self.config.ssh_user)

    # -- stop / start / terminate -------------------------------------------------------

    async def _each(self, method: str, instance_ids: Sequence[str], missing_ok: bool) -> None:
        from google.api_core import exceptions as gexc

        client, _ = await self._clients()

        async def one(key: str) -> None:
            zone, name = split_instance_key(key)
            try:
                op = await asyncio.to_thread(
                    getattr(client, method),
                    project=self.config.project,
                    zone=zone,
                    instance=name,
                    **self._opts(),
                )
            except gexc.NotFound:
                if missing_ok:
                    return
                raise ProviderError(
                    f"gcp: instance {key} not found", scope=f"{CLOUD}/{region_of(zone)}"
                ) from None
            except Exception as exc:
                raise translate_exception(exc, zone) from exc
            await self._wait(op, zone)

        await asyncio.gather(*(one(k) for k in instance_ids))

    async def stop(self, instance_ids: Sequence[str]) -> None:
        await self._each("stop_unary", instance_ids, missing_ok=False)

    async def start(self, instance_ids: Sequence[str]) -> None:
        await self._each("start_unary", instance_ids, missing_ok=False)

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        """Delete; boot disks go with the instance (auto_delete), NICs and IPs are inline;
        then the instances' port rule, if they had one, and a gang's placement policy with
        its last instance."""
        await self._each("delete_unary", instance_ids, missing_ok=True)
        await self.firewalls.close([split_instance_key(k)[1] for k in instance_ids])
        await self.policies.release_after(instance_ids)

    async def sweep_ports(self, daemon_id: str, busy_jobs: Sequence[int]) -> list[str]:
        """Port rules of this daemon whose instances are gone (see PortSweeper)."""
        live = await self.instances(managed_tags())
        names = [split_instance_key(i.instance_id)[1] for i in live]
        return await self.firewalls.sweep(names, daemon_id, busy_jobs)

    async def sweep_placement(self, tags: Mapping[str, str]) -> list[str]:
        return await self.policies.sweep(tags)

    async def _delete_many(self, zone: str, names: Sequence[str]) -> None:
        if names:
            await self._each("delete_unary", [instance_key(zone, n) for n in names], True)

    async def aclose(self) -> None:
        clients = (
            self._instances_client,
            self._operations_client,
            *(self._firewall_clients or ()),
            *(self._policy_clients or ()),
        )
        self._policy_clients = None
        for client in clients:
            transport = getattr(client, "transport", None)
            if transport is not None:
                await asyncio.to_thread(transport.close)
        self._instances_client = self._operations_client = None
        self._firewall_clients = None

"""Bringing a cluster's instances up: place it, launch (idempotent by token), and watch an
INIT cluster boot until it is UP, resuming a launch a restart cut short.

A refusal blocks its scope (capacity, quota and auth, for `block_seconds`; anything else
only for this launch) and the next offering is tried, up to `launch_attempts`. What ends a
cluster (retiring it DOWN) belongs to skyd.clusters.stopping: it is handed in as `retire`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from skyd.clock import Clock
from skyd.clusters.settings import ClusterSettings
from skyd.errors import (
    AuthError,
    CapacityError,
    InfeasibleError,
    ProviderError,
    QuotaError,
    SpecError,
)
from skyd.model import InstanceState, LaunchRequest
from skyd.providers.base import MANAGED, TAG_CLUSTER, TAG_MANAGED, TAG_TOKEN, Provider
from skyd.scheduler.placement import PlacementContext, PlacementOutcome, Placer
from skyd.spec import TaskSpec
from skyd.spec.extras import launch_extras
from skyd.store import Store
from skyd.store import clusters as cluster_store
from skyd.store.clusters import ClusterRecord, ClusterState
from skyd.store.records import EventRecord

GONE = (InstanceState.PREEMPTED, InstanceState.TERMINATED)
_BLOCKING_ERRORS = (CapacityError, QuotaError, AuthError)


class Retire(Protocol):
    """The service's way to take a cluster DOWN (terminating what is left when asked)."""

    def __call__(
        self, cluster: ClusterRecord, *, kind: str, reason: str, terminate: bool
    ) -> Awaitable[ClusterRecord]: ...


class Emit(Protocol):
    """Announce events already written to the store."""

    def __call__(self, *events: EventRecord) -> None: ...


class ClusterLauncher:
    """Placement, the provider's launch and the boot check of clusters (for the service)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        placer: Placer,
        settings: ClusterSettings,
        provider_of: Callable[[ClusterRecord], Provider],
        retire: Retire,
        emit: Emit,
        placement_context: Callable[[], PlacementContext] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.placer = placer
        self.settings = settings
        self._provider = provider_of
        self._retire = retire
        self._emit = emit
        self._placement_context = placement_context
        self._blocked: dict[str, float] = {}  # scope → skipped by cluster launches until

    def decide(self, spec: TaskSpec, blocked: set[str]) -> PlacementOutcome:
        """Where the spec's resources fit best, avoiding what the scheduler and earlier
        cluster launches blocked, and `blocked`."""
        context = self._placement_context() if self._placement_context else PlacementContext()
        now = self.clock.now()
        self._blocked = {s: t for s, t in self._blocked.items() if t > now}
        context = PlacementContext(
            blocked=context.blocked | frozenset(self._blocked) | frozenset(blocked),
            full_providers=context.full_providers,
            signals=context.signals,
        )
        return self.placer.decide(spec, context=context)

    async def launch_instances(
        self, cluster: ClusterRecord, spec: TaskSpec, outcome: PlacementOutcome
    ) -> ClusterRecord:
        """Launch where `outcome` says; on a refusal block its scope and try the next offering."""
        tried: list[str] = []
        blocked: set[str] = set()
        for attempt in range(1, self.settings.launch_attempts + 1):
            if attempt > 1:
                outcome = self.decide(spec, blocked)
            candidate, provider_name = outcome.candidate, outcome.provider
            if candidate is None or provider_name is None:
                tried.append(f"nothing else fits: {outcome.decision.reason}")
                break
            token = f"skyd-cluster-{cluster.id}-{attempt}"
            placement = placement_json(provider_name, outcome)
            cluster, event = cluster_store.record_plan(
                self.store,
                cluster.id,
                provider=provider_name,
                placement=placement,
                launch_token=token,
                now=self.clock.now(),
                reason=f"placed on {provider_name}: {outcome.decision.reason}",
            )
            self._emit(event)
            try:
                return await self.launch_with_token(cluster, spec, token)
            except ProviderError as exc:
                scope = exc.scope or candidate.offer.cloud
                if isinstance(exc, _BLOCKING_ERRORS):
                    self._blocked[scope] = self.clock.now() + self.settings.block_seconds
                else:
                    scope = candidate.key  # a transient failure: try elsewhere this time
                blocked.add(scope)
                note = f"tried {candidate.offer.key}: {exc.message} (blocked {scope})"
                tried.append(note)
                self._emit(
                    cluster_store.append_cluster_event(
                        self.store,
                        cluster,
                        now=self.clock.now(),
                        kind="cluster_launch_failed",
                        reason=note,
                    )
                )
        reason = "could not launch: " + "; ".join(tried)
        await self._retire(cluster, kind="cluster_failed", reason=reason, terminate=False)
        raise InfeasibleError(f"cluster {cluster.name} {reason}")

    async def launch_with_token(
        self, cluster: ClusterRecord, spec: TaskSpec, token: str
    ) -> ClusterRecord:
        """The provider call itself; idempotent by `token`, so a restart may repeat it."""
        placement = cluster.placement or {}
        offer = self.placer.market.catalog.offer_by_key(str(placement.get("offer_key")))
        if offer is None:
            raise ProviderError(f"offering {placement.get('offer_key')} is no longer offered")
        spot = bool(placement.get("spot"))
        provider = self._provider(cluster)
        request = LaunchRequest(
            job_id=0,
            attempt=0,
            client_token=token,
            offer=offer,
            spot=spot,
            num_nodes=spec.num_nodes,
            tags={TAG_MANAGED: MANAGED, TAG_CLUSTER: cluster.name, TAG_TOKEN: token},
            disk_size_gib=spec.resources.disk_size,
            **launch_extras(spec, offer),
        )
        instances = await provider.launch(request)
        cluster, event = cluster_store.record_launched(
            self.store,
            cluster.id,
            instances,
            hourly_price_micros=int(placement.get("hourly_price_micros") or 0),
            launch_token=token,
            up=all(i.state == InstanceState.RUNNING for i in instances),
            now=self.clock.now(),
        )
        self._emit(event)
        return cluster

    async def check_boot(self, cluster: ClusterRecord) -> ClusterRecord:
        """An INIT cluster: UP once all its instances run; DOWN if one is gone. With no
        instances recorded (the daemon stopped mid-launch) the launch is repeated with the
        same token, which adopts what the provider already made."""
        if not cluster.instance_ids:
            if not cluster.launch_token:
                return await self._retire(
                    cluster,
                    kind="cluster_failed",
                    reason="the launch was interrupted before it was placed",
                    terminate=False,
                )
            try:
                spec = TaskSpec.from_json(cluster.spec_json)
                cluster = await self.launch_with_token(cluster, spec, cluster.launch_token)
            except (ProviderError, SpecError) as exc:
                return await self._retire(
                    cluster,
                    kind="cluster_failed",
                    reason=f"the launch interrupted by a restart could not resume: {exc.message}",
                    terminate=False,
                )
            if cluster.state != ClusterState.INIT:
                return cluster
        provider = self._provider(cluster)
        states = await provider.describe(list(cluster.instance_ids))
        gone = [iid for iid, state in states.items() if state in GONE]
        if gone:
            return await self._retire(
                cluster,
                kind="cluster_lost",
                reason=f"instance {gone[0]} is {states[gone[0]].value.lower()}",
                terminate=True,
            )
        if states and all(s == InstanceState.RUNNING for s in states.values()):
            cluster, event = cluster_store.set_cluster_state(
                self.store,
                cluster.id,
                ClusterState.UP,
                now=self.clock.now(),
                kind="cluster_up",
                reason=f"{', '.join(sorted(states))} running",
                instance_state=InstanceState.RUNNING.value,
            )
            self._emit(event)
        return cluster


def placement_json(provider: str, outcome: PlacementOutcome) -> dict[str, Any]:
    """What the store keeps of a cluster's placement (and the API shows)."""
    candidate = outcome.candidate
    assert candidate is not None
    offer = candidate.offer
    return {
        "provider": provider,
        **offer.placement_fields(),
        "spot": candidate.spot,
        "hourly_price_micros": candidate.hourly_price_micros,
        "why": outcome.decision.reason,
    }

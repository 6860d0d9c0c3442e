"""Ending a cluster's compute: stop it (disks kept), retire it DOWN, and autostop idle ones.

Each change calls the provider first and then writes the cluster's new state with its event
to the store, so a refusal leaves the cluster as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from skyd.clock import Clock
from skyd.clusters.idleness import IdleWatch
from skyd.clusters.launching import Emit
from skyd.errors import ConflictError, ProviderError
from skyd.model import InstanceState, JobState
from skyd.providers.base import Provider
from skyd.store import Store
from skyd.store import clusters as cluster_store
from skyd.store import jobs as job_store
from skyd.store.clusters import ClusterRecord, ClusterState


class ClusterStopper:
    """Stop, tear down and retire clusters (for the service's commands, its budget check and
    the launcher's failures), and stop or tear down those idle past their autostop."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        idle: IdleWatch,
        provider_of: Callable[[ClusterRecord], Provider],
        emit: Emit,
    ) -> None:
        self.store = store
        self.clock = clock
        self.idle = idle
        self._provider = provider_of
        self._emit = emit
        self.autostop_failed: set[int] = set()  # failed autostops already reported

    async def stop(self, cluster: ClusterRecord, *, kind: str, reason: str) -> ClusterRecord:
        """STOPPED: the provider stops the instances (disks kept, compute not billed)."""
        provider = self._provider(cluster)
        await _refused_as_conflict(
            provider.stop(list(cluster.instance_ids)),
            f"cannot stop cluster {cluster.name}",
            f"`skyctl down {cluster.name}` tears it down instead",
        )
        return self._record(cluster, ClusterState.STOPPED, InstanceState.STOPPED, kind, reason)

    def _record(
        self,
        cluster: ClusterRecord,
        state: ClusterState,
        instances: InstanceState,
        kind: str,
        reason: str,
    ) -> ClusterRecord:
        """Write the cluster's new state (after the provider call) and tell the watchers."""
        cluster, event = cluster_store.set_cluster_state(
            self.store,
            cluster.id,
            state,
            now=self.clock.now(),
            kind=kind,
            reason=reason,
            instance_state=instances.value,
        )
        self._emit(event)
        return cluster

    async def teardown(self, cluster: ClusterRecord, *, kind: str, reason: str) -> ClusterRecord:
        return await self.retire(cluster, kind=kind, reason=reason, terminate=True)

    async def retire(
        self, cluster: ClusterRecord, *, kind: str, reason: str, terminate: bool
    ) -> ClusterRecord:
        """DOWN: terminate what is left, and fail the jobs that were waiting for the cluster."""
        if terminate and cluster.instance_ids:
            provider = self._provider(cluster)
            await _refused_as_conflict(
                provider.terminate(list(cluster.instance_ids)),
                f"cannot tear down cluster {cluster.name}",
                "try again",
            )
        cluster = self._record(cluster, ClusterState.DOWN, InstanceState.TERMINATED, kind, reason)
        for job in cluster_store.cluster_jobs(self.store, cluster.id, active_only=True):
            if job.state == JobState.PENDING:
                _job, failed = job_store.transition(
                    self.store,
                    job.id,
                    JobState.FAILED,
                    now=self.clock.now(),
                    reason=f"cluster {cluster.name} is down: {reason}",
                )
                self._emit(failed)
        self.idle.forget(cluster.id)
        self.autostop_failed.discard(cluster.id)
        return cluster

    async def check_idle(self, cluster: ClusterRecord) -> None:
        """Stop (or tear down) an UP cluster idle past its autostop minutes."""
        minutes = cluster.autostop_minutes
        if minutes is None:
            return
        now = self.clock.now()
        idle_since = await self.idle.idle_since(cluster, now)
        if idle_since is None:
            self.autostop_failed.discard(cluster.id)
            return
        if now - idle_since < minutes * 60:
            return
        idle_for = (now - idle_since) / 60
        action = "tearing it down" if cluster.autostop_down else "stopping it"
        reason = f"autostop: idle for {idle_for:.0f} min (no jobs, sessions or GPU load); {action}"
        try:
            if cluster.autostop_down:
                await self.teardown(cluster, kind="autostop", reason=reason)
            else:
                await self.stop(cluster, kind="autostop", reason=reason)
        except ConflictError as exc:
            # tried again on every pass, but reported once per idle stretch
            if cluster.id in self.autostop_failed:
                return
            self.autostop_failed.add(cluster.id)
            self._emit(
                cluster_store.append_cluster_event(
                    self.store, cluster, now=now, kind="autostop_failed", reason=exc.message
                )
            )


async def _refused_as_conflict(call: Awaitable[object], what: str, then: str) -> None:
    """Run a provider call; its refusal is the caller's conflict, said with what to do."""
    try:
        await call
    except ProviderError as exc:
        raise ConflictError(f"{what}: {exc.message}; {then}") from None

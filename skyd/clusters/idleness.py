"""Whether a cluster is idle, and since when: jobs, sessions and GPU load, per cluster."""

from __future__ import annotations

from skyd.clusters.activity import ActivityProbe, GpuProbe
from skyd.store import Store
from skyd.store import clusters as cluster_store
from skyd.store.clusters import ClusterRecord


class IdleWatch:
    """Idle means no job pending, setting up or running on the cluster (so setup time is busy),
    no session open on its instances, and no GPU at or above `gpu_busy_percent`.

    The moment a cluster became idle is kept in the store (`idle_since`); the last time it was
    seen busy is kept here, so an idle stretch never starts before the last sign of use.
    """

    def __init__(
        self,
        store: Store,
        activity: ActivityProbe,
        gpu: GpuProbe,
        *,
        gpu_busy_percent: float,
        started_at: float,
    ) -> None:
        self._store = store
        self._activity = activity
        self._gpu = gpu
        self._gpu_busy_percent = gpu_busy_percent
        # a restarted daemon does not know what happened while it was down: idle from then
        self._started_at = started_at
        self._last_busy: dict[int, float] = {}

    async def busy_reason(self, cluster: ClusterRecord) -> str | None:
        """Why the cluster is in use, or None when it is idle."""
        active = cluster_store.cluster_jobs(self._store, cluster.id, active_only=True)
        if active:
            return f"job {active[0].id} is {active[0].state.value}"
        instances = cluster_store.cluster_instances(self._store, cluster)
        for inst in instances:
            sessions = await self._activity.active_sessions(inst)
            if sessions:
                return f"{sessions} session(s) open on {inst.instance_id}"
        for inst in instances:
            load = await self._gpu.utilization(inst)
            if load is not None and load >= self._gpu_busy_percent:
                return f"GPU {load:.0f}% busy on {inst.instance_id}"
        return None

    async def idle_since(self, cluster: ClusterRecord, now: float) -> float | None:
        """When the cluster's current idle stretch began, or None while it is busy."""
        if await self.busy_reason(cluster) is not None:
            self._last_busy[cluster.id] = now
            if cluster.idle_since is not None:
                cluster_store.set_idle_since(self._store, cluster.id, None)
            return None
        if cluster.idle_since is not None:
            return cluster.idle_since
        marks = [
            cluster.up_at,
            cluster.autostop_set_at,
            cluster_store.last_job_end(self._store, cluster.id),
            self._last_busy.get(cluster.id),
            self._started_at,
        ]
        since = max(mark for mark in marks if mark is not None)
        cluster_store.set_idle_since(self._store, cluster.id, since)
        return since

    def forget(self, cluster_id: int) -> None:
        """The cluster's idle clock starts afresh (autostop changed, or the cluster is gone)."""
        self._last_busy.pop(cluster_id, None)

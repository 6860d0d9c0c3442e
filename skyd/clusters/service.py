"""Interactive clusters: launch, run jobs on, stop, start and tear down, and stop them when idle.

A cluster is a named, owned set of instances that outlives its jobs. Its instances are
recorded without a job, so the scheduler's end-of-job teardown never touches them; jobs
are bound to the cluster instead, and the scheduler asks `target_for()` where to run them.
Every change is written to the store with its event before it is announced on the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

from skyd.accounting.errors import BudgetExceededError
from skyd.clock import Clock
from skyd.clusters.activity import (
    SESSION_ENV,
    ActivityProbe,
    GpuProbe,
    NoGpuReading,
    NoSessions,
)
from skyd.clusters.budgets import ClusterBudgets, NoClusterBudgets
from skyd.clusters.idleness import IdleWatch
from skyd.clusters.launching import ClusterLauncher
from skyd.clusters.names import check_cluster_name
from skyd.clusters.settings import ClusterSettings
from skyd.clusters.stopping import ClusterStopper
from skyd.errors import (
    ConflictError,
    InfeasibleError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    SpecError,
)
from skyd.events import EventBus
from skyd.identity import Caller
from skyd.model import InstanceState
from skyd.providers.base import Provider
from skyd.scheduler.placement import PlacementContext, Placer, containers_known
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import clusters as cluster_store
from skyd.store import jobs as job_store
from skyd.store.clusters import ClusterRecord, ClusterState, NewJob
from skyd.store.records import EventRecord, InstanceRecord, JobRecord

log = logging.getLogger("skyd.clusters")

# How a forced stop/down cancels a cluster's jobs: the scheduler's `cancel` (kills processes).
JobCanceller = Callable[[int, Caller], Awaitable[object]]


class ClusterTarget(NamedTuple):
    """Where a job bound to a cluster runs: the provider and the cluster's instances."""

    provider: str
    instances: list[InstanceRecord]


class ClusterService:
    """Commands on clusters (for the API), `target_for_job` / `job_env` (for the scheduler),
    and `run()` (for the daemon's TaskGroup): the boot and autostop loop.

    `cancel_job` is the scheduler's `cancel`, used by a forced stop or down;
    `placement_context` its `placement_context`, so cluster launches avoid the scopes the
    scheduler has blocked.
    """

    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        providers: Mapping[str, Provider],
        placer: Placer,
        cancel_job: JobCanceller,
        activity: ActivityProbe | None = None,
        gpu: GpuProbe | None = None,
        settings: ClusterSettings | None = None,
        placement_context: Callable[[], PlacementContext] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.providers = providers
        self.placer = placer
        self.settings = settings or ClusterSettings()
        self._cancel_job = cancel_job
        self.idle = IdleWatch(
            store,
            activity or NoSessions(),
            gpu or NoGpuReading(),
            gpu_busy_percent=self.settings.gpu_busy_percent,
            started_at=clock.now(),
        )
        self.stopper = ClusterStopper(
            store=store,
            clock=clock,
            idle=self.idle,
            provider_of=self._provider,
            emit=self._emit,
        )
        self.launcher = ClusterLauncher(
            store=store,
            clock=clock,
            placer=placer,
            settings=self.settings,
            provider_of=self._provider,
            retire=self.stopper.retire,
            emit=self._emit,
            placement_context=placement_context,
        )
        self._locks: dict[int, asyncio.Lock] = {}
        self._launching: set[int] = set()
        self.budgets: ClusterBudgets = NoClusterBudgets()

    # -- queries --------------------------------------------------------------------------

    def all_clusters(self, *, include_down: bool = False) -> list[ClusterRecord]:
        return cluster_store.list_clusters(self.store, include_down=include_down)

    def get(self, name: str) -> ClusterRecord:
        return cluster_store.get_cluster(self.store, name)

    def instances(self, cluster: ClusterRecord) -> list[InstanceRecord]:
        return cluster_store.cluster_instances(self.store, cluster)

    def jobs(self, cluster: ClusterRecord, *, active_only: bool = False) -> list[JobRecord]:
        return cluster_store.cluster_jobs(self.store, cluster.id, active_only=active_only)

    def events(self, cluster: ClusterRecord) -> list[EventRecord]:
        return cluster_store.cluster_events(self.store, cluster.id)

    def cluster_of_job(self, job_id: int) -> ClusterRecord | None:
        """The cluster a job is bound to (None: an ordinary managed job)."""
        cluster_id = cluster_store.cluster_id_of_job(self.store, job_id)
        if cluster_id is None:
            return None
        return cluster_store.get_cluster_by_id(self.store, cluster_id)

    def target_for(self, name: str) -> ClusterTarget:
        """Where to run a job on cluster `name`; ConflictError while it is not UP (the
        scheduler keeps the job waiting), NotFoundError once it is gone (fail the job)."""
        cluster = self.get(name)
        if cluster.state != ClusterState.UP:
            raise ConflictError(f"cluster {name} is {cluster.state.value}, not UP yet")
        return ClusterTarget(cluster.provider, self.instances(cluster))

    def target_for_job(self, job_id: int) -> ClusterTarget | None:
        """For the scheduler, per job: None for an ordinary job (place and launch it as
        usual); the cluster's instances for a job bound to an UP cluster; ConflictError while
        the cluster is INIT or STOPPED (keep the job waiting); NotFoundError once the cluster
        is DOWN (fail the job)."""
        cluster = self.cluster_of_job(job_id)
        if cluster is None:
            return None
        if cluster.state == ClusterState.DOWN:
            raise NotFoundError(f"cluster {cluster.name} of job {job_id} is down: {cluster.reason}")
        return self.target_for(cluster.name)

    def job_env(self, job_id: int) -> dict[str, str]:
        """Environment for a job bound to a cluster: the cluster's name under SESSION_ENV, so
        the activity probe also sees the job's processes (and SkyPilot's variable name)."""
        cluster = self.cluster_of_job(job_id)
        if cluster is None:
            return {}
        return {SESSION_ENV: cluster.name, "SKYPILOT_CLUSTER_NAME": cluster.name}

    # -- commands -------------------------------------------------------------------------

    async def launch(
        self,
        spec: TaskSpec,
        *,
        name: str,
        caller: Caller,
        base_dir: str,
        job_name: str | None = None,
        idle_minutes: int | None = None,
        down: bool = False,
    ) -> tuple[ClusterRecord, JobRecord]:
        """Create cluster `name` where the spec's resources fit best, launch it, and queue
        the spec's setup+run as its first job. On an existing cluster of the caller, only
        queues the job (like SkyPilot's `launch -c` on an existing cluster).

        Autostop comes from `idle_minutes`/`down` when given (`skyctl launch -i`), else from
        the spec's `resources.autostop`."""
        check_cluster_name(name)
        try:
            existing: ClusterRecord | None = self.get(name)
        except NotFoundError:
            existing = None
        if existing is not None:
            job = self.exec(name, spec, caller=caller, base_dir=base_dir, job_name=job_name)
            return self.get(name), job
        await containers_known(self.placer.market, [spec])
        outcome = self.launcher.decide(spec, set())
        if outcome.candidate is None or outcome.provider is None:
            raise InfeasibleError(f"cluster {name} cannot be placed: {outcome.decision.reason}")
        if idle_minutes is not None and idle_minutes < 0:
            raise SpecError(
                f"idle_minutes must be 0 or more, got {idle_minutes}", field="idle_minutes"
            )
        # a cluster is admitted like a job: a known project the caller may charge, and the
        # budgets and limits of project, owner and lab; a cluster does not queue, so a hold
        # refuses it with the reason
        project = self.budgets.resolve_project(spec.project, caller)
        hourly = outcome.candidate.hourly_price_micros * spec.num_nodes
        decision = self.budgets.check_submit(spec, caller, hourly, project=project)
        if decision.hold:
            raise BudgetExceededError(f"cluster {name} is not launched: {decision.message}")
        if project is not None:
            spec = spec.model_copy(update={"project": project})
        autostop = spec.resources.autostop
        minutes = autostop.idle_minutes if autostop is not None and autostop.enabled else None
        stop_down = bool(autostop and autostop.down)
        if idle_minutes is not None:
            minutes, stop_down = idle_minutes, down
        cluster, job, events = cluster_store.insert_cluster(
            self.store,
            name=name,
            owner_uid=caller.uid,
            owner_name=caller.name,
            spec_json=spec.to_json(),
            first_job=self._new_job(spec, caller, base_dir, job_name or spec.name or name),
            autostop_minutes=minutes,
            autostop_down=stop_down,
            now=self.clock.now(),
            project=project,
        )
        self._emit(*events)
        self._launching.add(cluster.id)
        try:
            async with self._lock(cluster.id):
                cluster = await self.launcher.launch_instances(cluster, spec, outcome)
        finally:
            self._launching.discard(cluster.id)
        return cluster, job_store.get_job(self.store, job.id)

    def exec(
        self,
        name: str,
        spec: TaskSpec,
        *,
        caller: Caller,
        base_dir: str,
        job_name: str | None = None,
    ) -> JobRecord:
        """Queue a job on the cluster's instances; nothing is launched."""
        cluster = self.get(name)
        _check_owner(cluster, caller, "run jobs on")
        if cluster.state == ClusterState.STOPPED:
            raise ConflictError(f"cluster {name} is stopped; `skyctl start {name}` first")
        # an exec'd job charges its own (checked) project; its time is the cluster's
        project = self.budgets.resolve_project(spec.project, caller)
        if project is not None:
            spec = spec.model_copy(update={"project": project})
        job, event = cluster_store.insert_cluster_job(
            self.store,
            cluster.id,
            self._new_job(spec, caller, base_dir, job_name or spec.name or f"{name}-exec"),
            now=self.clock.now(),
        )
        self.stopper.autostop_failed.discard(cluster.id)
        self._emit(event)
        return job

    async def stop(self, name: str, caller: Caller, *, force: bool = False) -> ClusterRecord:
        """Stop the instances (disks kept, compute not billed). Refused while jobs are active,
        unless `force`, which cancels them first."""
        cluster = self.get(name)
        _check_owner(cluster, caller, "stop")
        async with self._lock(cluster.id):
            cluster = self.get(name)
            if cluster.state == ClusterState.STOPPED:
                return cluster
            if cluster.state == ClusterState.INIT:
                raise ConflictError(
                    f"cluster {name} is still being launched or started; stop it once it is UP"
                )
            await self._settle_jobs(cluster, caller, force=force, action="stop")
            return await self.stopper.stop(
                cluster, kind="cluster_stopped", reason=f"stopped by {caller.name}"
            )

    async def start(self, name: str, caller: Caller) -> ClusterRecord:
        """Start a stopped cluster again; it is UP once every instance runs."""
        cluster = self.get(name)
        _check_owner(cluster, caller, "start")
        async with self._lock(cluster.id):
            cluster = self.get(name)
            if cluster.state != ClusterState.STOPPED:
                return cluster
            provider = self._provider(cluster)
            try:
                await provider.start(list(cluster.instance_ids))
            except ProviderError as exc:
                raise ConflictError(f"cannot start cluster {name}: {exc.message}") from None
            cluster, event = cluster_store.set_cluster_state(
                self.store,
                cluster.id,
                ClusterState.INIT,
                now=self.clock.now(),
                kind="cluster_starting",
                reason=f"started by {caller.name}",
                instance_state=InstanceState.PENDING.value,
            )
            self._emit(event)
            return await self.launcher.check_boot(cluster)

    async def down(self, name: str, caller: Caller, *, force: bool = False) -> ClusterRecord:
        """Terminate the instances and retire the cluster (its name is free again). Refused
        while jobs are active, unless `force`, which cancels them first."""
        cluster = self.get(name)
        _check_owner(cluster, caller, "tear down")
        if cluster.id in self._launching:
            raise ConflictError(f"cluster {name} is being launched; tear it down once it is UP")
        async with self._lock(cluster.id):
            cluster = self.get(name)
            await self._settle_jobs(cluster, caller, force=force, action="tear down")
            return await self.stopper.teardown(
                cluster, kind="cluster_down", reason=f"torn down by {caller.name}"
            )

    def set_autostop(
        self, name: str, caller: Caller, *, idle_minutes: int | None, down: bool = False
    ) -> ClusterRecord:
        """Stop (or with `down`, tear down) the cluster after `idle_minutes` idle;
        None cancels autostop. Setting it restarts the idle clock."""
        if idle_minutes is not None and idle_minutes < 0:
            raise SpecError(
                f"idle_minutes must be 0 or more, got {idle_minutes}; use cancel to turn "
                "autostop off",
                field="idle_minutes",
            )
        cluster = self.get(name)
        _check_owner(cluster, caller, "change autostop of")
        cluster, event = cluster_store.set_autostop(
            self.store,
            cluster.id,
            minutes=idle_minutes,
            down=down,
            by_name=caller.name,
            now=self.clock.now(),
        )
        self.stopper.autostop_failed.discard(cluster.id)
        self.idle.forget(cluster.id)
        self._emit(event)
        return cluster

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Check booting and idle clusters every `check_seconds`, until cancelled."""
        while True:
            try:
                await self.check_once()
            except Exception:
                log.exception("cluster check failed; retrying next time")
            await self.clock.sleep(self.settings.check_seconds)

    async def check_once(self) -> None:
        """One pass: promote booted clusters to UP, and stop (or tear down) idle ones."""
        await self._enforce_budgets()
        states = [ClusterState.INIT, ClusterState.UP]
        for cluster in cluster_store.list_clusters(self.store, states=states):
            lock = self._lock(cluster.id)
            if cluster.id in self._launching or lock.locked():
                continue
            try:
                async with lock:
                    current = cluster_store.get_cluster_by_id(self.store, cluster.id)
                    if current.state == ClusterState.INIT:
                        await self.launcher.check_boot(current)
                    elif current.state == ClusterState.UP:
                        await self.stopper.check_idle(current)
            except Exception:
                log.exception("checking cluster %s failed", cluster.name)
            # the store calls are synchronous: let API requests in between clusters
            await asyncio.sleep(0)

    async def _enforce_budgets(self) -> None:
        """Stop up clusters whose owner's, project's or the lab's budget is spent (a cluster
        is never left running at 100 %; "hold" and "stop" both stop it, disks kept)."""
        for cluster_id, action in self.budgets.clusters_over_budget():
            if action == "warn":
                continue
            lock = self._lock(cluster_id)
            async with lock:
                cluster = cluster_store.get_cluster_by_id(self.store, cluster_id)
                if cluster.state != ClusterState.UP:
                    continue
                await self.stopper.stop(
                    cluster,
                    kind="budget",
                    reason="stopped: a budget it counts against is spent (skyctl budget)",
                )

    # -- stopping -------------------------------------------------------------------------

    async def _settle_jobs(
        self, cluster: ClusterRecord, caller: Caller, *, force: bool, action: str
    ) -> None:
        active = self.jobs(cluster, active_only=True)
        if not active:
            return
        if not force:
            ids = ", ".join(str(j.id) for j in active)
            raise ConflictError(
                f"cluster {cluster.name} has active jobs ({ids}); wait for them, cancel them "
                f"(`skyctl cancel {active[0].id}`), or {action} it with --force to cancel them"
            )
        for job in active:
            await self._cancel_job(job.id, caller)

    # -- plumbing -------------------------------------------------------------------------

    def _provider(self, cluster: ClusterRecord) -> Provider:
        provider = self.providers.get(cluster.provider)
        if provider is None:
            raise ConflictError(
                f"cluster {cluster.name} runs on provider {cluster.provider!r}, which is not "
                "enabled in this daemon; enable it in the configuration"
            )
        return provider

    def _new_job(self, spec: TaskSpec, caller: Caller, base_dir: str, name: str) -> NewJob:
        return NewJob(
            name=name,
            owner_uid=caller.uid,
            owner_name=caller.name,
            project=spec.project,
            priority=spec.priority,
            spec_json=spec.to_json(),
            base_dir=base_dir,
        )

    def _lock(self, cluster_id: int) -> asyncio.Lock:
        return self._locks.setdefault(cluster_id, asyncio.Lock())

    def _emit(self, *events: EventRecord) -> None:
        for event in events:
            self.bus.publish(event)


def _check_owner(cluster: ClusterRecord, caller: Caller, action: str) -> None:
    if cluster.owner_uid != caller.uid and not caller.is_admin:
        raise PermissionDeniedError(
            f"cluster {cluster.name} belongs to {cluster.owner_name}; "
            f"only its owner or an admin may {action} it"
        )

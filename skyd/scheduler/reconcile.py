"""Reconcile: what the providers actually run under skyd's tags, against what the store says.

- In both: adopted (the store's state is brought up to date).
- In the store only: the instance is gone (recorded TERMINATED; the job's watch recovers it).
- At a provider only (an orphan, e.g. a crash between launch and record): if its tags name a
  job still PROVISIONING that same attempt, it is that launch's instance and is adopted —
  so a restart never launches a second instance for one attempt; otherwise it is
  terminated or only reported, per the `orphans` setting, and recorded as an event.
- Marked TERMINATING in the store (skyd is giving it back): left to the scheduler's pass,
  which finishes the termination and records the end (scheduler.giving_back).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from skyd.clock import Clock
from skyd.errors import NotFoundError, ProviderError
from skyd.model import Instance, InstanceState, JobState
from skyd.providers.base import (
    MANAGED,
    TAG_ATTEMPT,
    TAG_DAEMON,
    TAG_JOB,
    TAG_MANAGED,
    TAG_TOKEN,
    InstanceLister,
    PlacementSweeper,
    Provider,
    managed_tags,
)
from skyd.providers.ports import PortSweeper
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.records import EventRecord, InstanceRecord

log = logging.getLogger("skyd.reconcile")

_GONE = (InstanceState.TERMINATED, InstanceState.PREEMPTED)
_LOST = (*_GONE, InstanceState.TERMINATING)  # a watched job's step sees these as a loss


@dataclass(frozen=True, slots=True)
class Orphan:
    provider: str
    instance_id: str
    state: str
    job_id: int | None
    action: str  # "terminated" | "reported" | "adopted"


@dataclass
class ReconcileReport:
    at: float
    adopted: int = 0
    gone: int = 0
    orphans: list[Orphan] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    events: list[EventRecord] = field(default_factory=list)
    swept_port_rules: list[str] = field(default_factory=list)  # "provider:rule"


async def reconcile(
    store: Store,
    providers: Mapping[str, Provider],
    clock: Clock,
    *,
    daemon_id: str,
    orphan_policy: str = "terminate",
    busy_jobs: frozenset[int] = frozenset(),
) -> ReconcileReport:
    """One pass over every provider. `busy_jobs` are jobs with a launch in flight right now:
    their not-yet-recorded instances are not orphans."""
    report = ReconcileReport(at=clock.now())
    for name, provider in sorted(providers.items()):
        try:
            found = await provider.describe(tags={TAG_MANAGED: MANAGED, TAG_DAEMON: daemon_id})
        except ProviderError as exc:
            report.errors[name] = exc.message
            log.warning("reconcile: cannot list %s (%s); will retry", name, exc.message)
            continue
        known = {i.instance_id: i for i in instance_store.active_instances(store, name)}
        # being given back (the scheduler's pass finishes it): neither lost nor an orphan
        ending = {i.instance_id for i in instance_store.terminating_instances(store, name)}
        now = clock.now()
        for instance_id, record in known.items():
            state = found.get(instance_id)
            if (state is None or state in _LOST) and _watched_by_its_job(store, record):
                # the job's own step sees the loss and recovers (kill, terminate, record,
                # RECOVERING); marked ended here, the job would never learn of it
                report.adopted += 1
            elif state is None or state in _GONE:
                with store.transaction() as conn:
                    final = "PREEMPTED" if state == InstanceState.PREEMPTED else "TERMINATED"
                    instance_store.set_instance_state(conn, name, instance_id, final, now=now)
                report.gone += 1
            elif state.value != record.state:
                with store.transaction() as conn:
                    instance_store.set_instance_state(conn, name, instance_id, state.value, now=now)
                report.adopted += 1
            else:
                report.adopted += 1
        for instance_id, state in sorted(found.items()):
            if instance_id in known or instance_id in ending or state in _GONE:
                continue
            await _orphan(
                store, name, provider, instance_id, state, report, orphan_policy, busy_jobs, clock
            )
        if orphan_policy == "terminate" and isinstance(provider, PortSweeper):
            # port rules whose machines are gone (a daemon killed between the two deletes)
            try:
                swept = await provider.sweep_ports(daemon_id, sorted(busy_jobs))
            except ProviderError as exc:
                report.errors[name] = exc.message
                continue
            report.swept_port_rules += [f"{name}:{rule}" for rule in swept]
            if swept:
                log.info("reconcile: removed %s port rules of ended machines: %s", name, swept)
        if isinstance(provider, PlacementSweeper):
            # a gang's placement group left by a crash between creating it and launching
            try:
                swept = await provider.sweep_placement(
                    {TAG_MANAGED: MANAGED, TAG_DAEMON: daemon_id}
                )
            except ProviderError as exc:
                report.errors[f"{name}/placement"] = exc.message
            else:
                for item in swept:
                    log.info(
                        "reconcile: deleted %s placement resource %s (no live instance)", name, item
                    )
    return report


_WATCHING = (JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING)


def _watched_by_its_job(store: Store, record: InstanceRecord) -> bool:
    """Whether the instance belongs to the current attempt of a job that holds it."""
    if record.job_id is None:
        return False
    try:
        job = job_store.get_job(store, record.job_id)
    except NotFoundError:
        return False
    return job.state in _WATCHING and job.attempt == record.attempt


async def _orphan(
    store: Store,
    name: str,
    provider: Provider,
    instance_id: str,
    state: InstanceState,
    report: ReconcileReport,
    policy: str,
    busy_jobs: frozenset[int],
    clock: Clock,
) -> None:
    tags = await _tags_of(provider, instance_id)
    job_id = _int(tags.get(TAG_JOB))
    attempt = _int(tags.get(TAG_ATTEMPT))
    now = clock.now()
    if job_id is not None and job_id in busy_jobs:
        return  # its launch is being recorded right now
    job = None
    if job_id is not None:
        try:
            job = job_store.get_job(store, job_id)
        except Exception:
            job = None
    if (
        job is not None
        and job.state == JobState.PROVISIONING
        and attempt == job.attempt
        and tags.get(TAG_TOKEN) == f"skyd-{job.id}-{job.attempt}"
    ):
        instance = Instance(
            instance_id=instance_id,
            provider=name,
            cloud=str((job.placement or {}).get("cloud", name)),
            region=str((job.placement or {}).get("region", "")),
            zone=str((job.placement or {}).get("zone", "")),
            instance_type=str((job.placement or {}).get("instance_type", "")),
            spot=bool((job.placement or {}).get("spot", False)),
            state=state,
            tags=dict(tags),
        )
        price = int(float((job.placement or {}).get("hourly_price") or 0) * 1_000_000)
        with store.transaction() as conn:
            instance_store.insert_instance(
                conn,
                instance,
                job_id=job.id,
                attempt=job.attempt,
                client_token=tags.get(TAG_TOKEN, ""),
                hourly_price_micros=price,
                now=now,
            )
            event = job_store.append_event(
                conn,
                job_id=job.id,
                at=now,
                kind="adopted",
                reason=f"found {instance_id} at {name} launched for this attempt; adopted it",
            )
        report.events.append(event)
        report.orphans.append(Orphan(name, instance_id, state.value, job_id, "adopted"))
        return
    action = "reported"
    if policy == "terminate":
        try:
            await provider.terminate([instance_id])
            action = "terminated"
        except ProviderError as exc:
            report.errors[f"{name}/{instance_id}"] = exc.message
    with store.transaction() as conn:
        event = job_store.append_event(
            conn,
            job_id=job.id if job is not None else None,
            at=now,
            kind="orphan",
            reason=f"{name} runs {instance_id} with skyd tags but the store has no record of it; "
            f"{action}",
            data={"provider": name, "instance": instance_id, "action": action, "tags": tags},
        )
    report.events.append(event)
    report.orphans.append(Orphan(name, instance_id, state.value, job_id, action))


async def _tags_of(provider: Provider, instance_id: str) -> dict[str, str]:
    """The skyd tags of one instance (empty when the provider cannot list tags)."""
    if not isinstance(provider, InstanceLister):
        return {}
    for instance in await provider.instances(managed_tags()):
        if instance.instance_id == instance_id:
            return dict(instance.tags)
    return {}


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None

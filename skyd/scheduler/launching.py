"""From a waiting job to a started attempt: bind it to its cluster or pick an offer, launch
(idempotent by client token), wait for the instances to boot, then start the process.

Launch failures end in exactly one place each: capacity, quota and auth block their scope
and put the job back to PENDING; transient errors (what is left after the SDK's own retries)
retry from PENDING; a request the cloud refused fails the job at once with the cloud's
message and the fix; an error no adapter maps is retried UNKNOWN_ERROR_TRIES times, then fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from skyd.clock import Clock
from skyd.errors import (
    AuthError,
    CapacityError,
    ConflictError,
    NotFoundError,
    ProviderError,
    QuotaError,
    RequestRefusedError,
    TransientError,
    UnknownProviderError,
)
from skyd.market.live import LiveMarket
from skyd.model import Candidate, InstanceState, JobState, LaunchRequest
from skyd.providers.base import GangPlacer, Provider, job_tags
from skyd.scheduler.attempts import GONE, Attempts
from skyd.scheduler.blocks import PREEMPTION_BLOCK, ScopeBlocks
from skyd.scheduler.booting import SSH_CLOUDS, BootFailed, Booting, BootWait
from skyd.scheduler.interfaces import ClusterTargets, NoClusters, NoPlan, PlanView
from skyd.scheduler.pipelines import pipeline_hold, with_upstream
from skyd.scheduler.selection import Choice, Selector, Wait
from skyd.scheduler.signals import ObservedRisk
from skyd.scheduler.transitions import Journal, Transition
from skyd.spec import TaskSpec
from skyd.spec.extras import launch_extras
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store import jobs as job_store
from skyd.store.records import InstanceRecord, JobRecord

# Launch attempts of one job that may end in an unmapped provider error before it fails.
UNKNOWN_ERROR_TRIES = 3


class Launcher:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        providers: Mapping[str, Provider],
        market: LiveMarket,
        daemon_id: str,
        journal: Journal,
        selector: Selector,
        attempts: Attempts,
        blocks: ScopeBlocks,
        risk: ObservedRisk,
    ) -> None:
        self.store = store
        self.clock = clock
        self.providers = providers
        self.market = market
        self.daemon_id = daemon_id
        self.journal = journal
        self.selector = selector
        self.attempts = attempts
        self.blocks = blocks
        self.risk = risk
        self.clusters: ClusterTargets = NoClusters()
        self.plan: PlanView = NoPlan()
        self._unknown_errors: dict[int, int] = {}  # job id -> unmapped launch errors so far
        self.boot: BootWait | None = None  # set with the SSH runner: cloud VMs need it
        self.boot_tries = 3  # VMs of one job that may miss their boot deadline before it fails

    async def start_attempt(self, job: JobRecord, spec: TaskSpec | None = None) -> None:
        """A PENDING or RECOVERING job: start its next attempt now, or record why it waits."""
        spec = spec or TaskSpec.from_json(job.spec_json)
        if job.state == JobState.PENDING and (held := pipeline_hold(self.store, job)):
            if held.cancel:
                self.journal.move(job.id, JobState.CANCELLED, reason=held.reason)
            else:
                self.journal.note_waiting(job, held.reason)
            return
        # a later stage is placed with its inputs where the stage before actually ran
        spec = with_upstream(self.store, job, spec)
        if await self._start_on_cluster(job, spec):
            return
        picked = self.selector.select(
            job, spec, self.plan, lambda: job_store.job_events(self.store, job.id)
        )
        if isinstance(picked, Wait):
            self.journal.note_waiting(job, picked.reason)
            return
        self.journal.placed(job.id)
        self.plan.planned.pop(job.id, None)  # from now on the store says where it is
        attempt = job.attempt + 1
        reason = f"placed on {picked.choice.provider}: {picked.placement['why']}"
        if picked.placement.get("changeover"):  # the spot policy's: what changeover it used
            reason += f"; {picked.placement['changeover']}"
        if picked.placement.get("history"):  # the spot policy's: what history it used
            reason += "; history: " + "; ".join(picked.placement["history"])
        job = self.journal.move(
            job.id,
            JobState.PROVISIONING,
            reason=reason,
            data={"attempt": attempt, "placement": picked.placement},
            attempt=attempt,
            placement_json=json.dumps(picked.placement),
        )
        await self._launch(job, spec, picked.choice)

    async def _start_on_cluster(self, job: JobRecord, spec: TaskSpec) -> bool:
        """A job bound to an interactive cluster runs on its instances: nothing is launched.
        Returns False for an ordinary job."""
        try:
            target = self.clusters.target_for_job(job.id)
        except ConflictError as exc:
            self.journal.note_waiting(job, f"waiting: {exc.message}")
            return True
        except NotFoundError as exc:
            self.journal.move(job.id, JobState.FAILED, reason=exc.message)
            return True
        if target is None:
            return False
        first = target.instances[0] if target.instances else None
        placement = {
            "provider": target.provider,
            "cluster": True,
            "cloud": first.cloud if first else target.provider,
            "region": first.region if first else "",
            "zone": first.zone if first else "",
            "instance_type": first.instance_type if first else "",
            "spot": bool(first.spot) if first else False,
            "hourly_price": (first.hourly_price_micros if first else 0) / 1_000_000,
            "expected_cost": None,
            "why": "runs on its cluster's instances (nothing launched)",
        }
        attempt = job.attempt + 1
        job = self.journal.move(
            job.id,
            JobState.PROVISIONING,
            reason="bound to a cluster: " + ", ".join(i.instance_id for i in target.instances),
            data={"attempt": attempt, "placement": placement},
            attempt=attempt,
            placement_json=json.dumps(placement),
        )
        job = self.journal.move(job.id, JobState.SETTING_UP, reason="cluster is up")
        await self.attempts.start(job, spec)
        return True

    async def resume_provisioning(self, job: JobRecord) -> None:
        """Instances booting: start the job once they run. After a restart mid-launch with
        nothing recorded: repeat the launch with the same token (idempotent)."""
        spec = TaskSpec.from_json(job.spec_json)
        attempt_instances = [
            i
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.attempt == job.attempt and i.state in instance_store.ACTIVE_INSTANCE_STATES
        ]
        if attempt_instances:
            await self._await_boot(job, spec, attempt_instances)
            return
        placement = job.placement or {}
        provider_name = placement.get("provider")
        if provider_name not in self.providers:
            self.journal.move(
                job.id,
                JobState.PENDING,
                reason=f"provider {provider_name!r} is not enabled any more; placing again",
            )
            return
        offer = self.market.catalog.offer_by_key(str(placement.get("offer_key")))
        spot = bool(placement.get("spot"))
        price = offer.hourly_micros(spot) if offer is not None else None
        if offer is not None and price is not None and provider_name is not None:
            await self._launch(job, spec, Choice(provider_name, Candidate(offer, spot, price)))
            return
        self.journal.move(
            job.id,
            JobState.PENDING,
            reason="the offering chosen before the restart is gone; placing again",
        )

    async def _launch(self, job: JobRecord, spec: TaskSpec, choice: Choice) -> None:
        provider = self.providers[choice.provider]
        token = f"skyd-{job.id}-{job.attempt}"
        request = LaunchRequest(
            job_id=job.id,
            attempt=job.attempt,
            client_token=token,
            offer=choice.candidate.offer,
            spot=choice.candidate.spot,
            num_nodes=spec.num_nodes,
            tags=job_tags(self.daemon_id, job.id, job.attempt, token),
            disk_size_gib=spec.resources.disk_size,
            time_limit_s=time_limit(
                job, spec, self.clock.now(), choice.candidate.offer.accelerator_name
            ),
            **launch_extras(spec, choice.candidate.offer),
        )
        offer_key = choice.candidate.offer.key
        try:
            instances = await provider.launch(request)
        except (CapacityError, QuotaError, AuthError) as exc:
            scope = exc.scope or choice.candidate.offer.cloud
            if isinstance(exc, CapacityError) and choice.candidate.spot:
                self.risk.seen(offer_key, "skyd-launch-failure")
            self.blocks.block_after(exc, scope, self.clock.now())
            self.journal.move(
                job.id,
                JobState.PENDING,
                kind="launch_failed",
                reason=f"tried {offer_key}: {exc.message} (blocked {scope})",
                data={"error": exc.code, "scope": scope},
            )
            return
        except RequestRefusedError as exc:
            self.journal.move(
                job.id,
                JobState.FAILED,
                kind="launch_failed",
                reason=f"tried {offer_key}: {exc.message}",
                data={"error": exc.code},
            )
            return
        except UnknownProviderError as exc:
            tries = self._unknown_errors.get(job.id, 0) + 1
            self._unknown_errors[job.id] = tries
            if tries >= UNKNOWN_ERROR_TRIES:
                del self._unknown_errors[job.id]
                self.journal.move(
                    job.id,
                    JobState.FAILED,
                    kind="launch_failed",
                    reason=f"tried {offer_key}: {exc.message} ({tries} launches failed so)",
                    data={"error": exc.code, "tries": tries},
                )
                return
            self.journal.move(
                job.id,
                JobState.PENDING,
                kind="launch_failed",
                reason=f"tried {offer_key}: {exc.message}; will retry ({tries} of "
                f"{UNKNOWN_ERROR_TRIES})",
                data={"error": exc.code, "tries": tries},
            )
            return
        except (TransientError, ProviderError) as exc:
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            when = "will retry"
            if retry_after:
                # the cloud said when to come back (Retry-After after the SDK's own retries):
                # nothing is launched in that scope before then
                scope = exc.scope or choice.candidate.offer.cloud
                self.blocks.block(scope, self.clock.now() + retry_after)
                when = f"will retry after {retry_after:g} s as {choice.provider} asked"
            self.journal.move(
                job.id,
                JobState.PENDING,
                kind="launch_failed",
                reason=f"tried {offer_key}: {exc.message}; {when}",
                data={"error": exc.code, "retry_after": retry_after},
            )
            return
        self._unknown_errors.pop(job.id, None)
        if choice.candidate.spot and instances:
            self.risk.spot_availability(offer_key, True, "skyd-launch")
        if len({i.instance_id for i in instances}) < spec.num_nodes:
            # all or nothing: never run a gang short of nodes; give back what did launch
            got = len(instances)
            if instances:
                await provider.terminate([i.instance_id for i in instances])
            self.blocks.block_after(
                CapacityError("partial launch", scope=offer_key), offer_key, self.clock.now()
            )
            self.journal.move(
                job.id,
                JobState.PENDING,
                kind="launch_failed",
                reason=f"tried {offer_key}: {got} of {spec.num_nodes} nodes launched; "
                f"terminated them (a gang starts with every node or not at all)",
                data={"error": "partial_launch", "launched": got, "scope": offer_key},
            )
            return
        rows = self.journal.instance_rows(
            instances, job=job, token=token, hourly_micros=choice.candidate.hourly_price_micros
        )
        names = ", ".join(i.instance_id for i in instances)
        data: dict[str, object] = {"instances": [i.instance_id for i in instances]}
        if spec.num_nodes > 1 and isinstance(provider, GangPlacer):
            # how the gang's machines were packed close, or why they were not
            data["placement"] = provider.placement_note(request)
            names = f"{names} ({data['placement']})"
        if any(i.state in GONE for i in instances):
            # a relaunch after a crash (same token, same instance) finds it taken back
            # before it ever ran: record it and recover, or every pass relaunches it again
            self.journal.launched(job, rows, f"launched {names}; already gone", data)
            recorded = [
                i
                for i in instance_store.instances_for_job(self.store, job.id)
                if i.attempt == job.attempt
            ]
            states = {i.instance_id: i.state for i in instances}
            await self.attempts.preempted(job, spec, recorded, states)
            return
        if choice.provider not in SSH_CLOUDS and all(
            i.state == InstanceState.RUNNING for i in instances
        ):
            job = self.journal.move(
                job.id, JobState.SETTING_UP, reason=f"launched {names}", data=data, also=rows
            )
            await self.attempts.start(job, spec)
            return
        self.journal.launched(job, rows, f"launched {names}; waiting for it to boot", data)

    async def _await_boot(
        self, job: JobRecord, spec: TaskSpec, instances: list[InstanceRecord]
    ) -> None:
        by_provider: dict[str, list[str]] = {}
        for inst in instances:
            by_provider.setdefault(inst.provider, []).append(inst.instance_id)
        if any(name not in self.providers for name in by_provider):
            return
        states = await self.attempts.describe(instances)
        if any(s in (InstanceState.PREEMPTED, InstanceState.TERMINATED) for s in states.values()):
            await self.attempts.preempted(job, spec, instances, states)
            return
        if len(states) < len(instances) or any(s != InstanceState.RUNNING for s in states.values()):
            return
        if instances[0].provider in SSH_CLOUDS:
            if self.boot is None:
                outcome: object = BootFailed(
                    f"no SSH runner for {instances[0].provider} VMs", final=True
                )
            else:
                outcome = await self.boot.check(job, instances)
            if isinstance(outcome, Booting):
                self.journal.note_waiting(job, outcome.reason)
                return
            if isinstance(outcome, BootFailed):
                await self._boot_failed(job, instances, outcome.reason, outcome.final)
                return
        job = self.journal.move(job.id, JobState.SETTING_UP, reason=f"{', '.join(states)} running")
        await self.attempts.start(job, spec)

    async def _boot_failed(
        self, job: JobRecord, instances: list[InstanceRecord], reason: str, final: bool
    ) -> None:
        """VMs skyd could not log in to: give them back, then place the job elsewhere (the
        zone is avoided for a while) or, after `boot_tries` such VMs, fail it with the cause."""
        first = instances[0]
        zone = f"{first.cloud}/{first.region}/{first.zone}"
        tries = 1 + sum(
            1 for e in job_store.job_events(self.store, job.id) if e.kind == "boot_failed"
        )
        data = {"zone": zone, "tries": tries}
        now = self.clock.now()
        if final or tries >= self.boot_tries:
            outcome = Transition(
                job.id,
                JobState.FAILED,
                f"{first.instance_id} in {zone}: {reason} ({tries} VMs failed so)",
                now,
                kind="boot_failed",
                data=data,
            )
        else:
            self.blocks.block(zone, now + PREEMPTION_BLOCK)
            outcome = Transition(
                job.id,
                JobState.PENDING,
                f"{first.instance_id} in {zone}: {reason}; placing it again (blocked {zone})",
                now,
                kind="boot_failed",
                data=data,
            )
        await self.attempts.release(job, kill_grace=0.0, then=outcome)


def time_limit(job: JobRecord, spec: TaskSpec, now: float, accelerator: str) -> float | None:
    """The attempt's wall-clock limit for batch systems that enforce one (Slurm's --time,
    a Job's activeDeadlineSeconds): until the deadline, else twice the user's estimate."""
    deadline = spec.deadline_at(job.created_at)
    if deadline is not None:
        return max(60.0, deadline - now)
    hours = spec.estimated_hours(accelerator or None)
    return hours * 2 * 3600 if hours else None

"""Which offer a waiting job starts on now, or why it waits. Pure: no store, no I/O (the
spot availability history comes through an injected view).

The order of questions is the scheduler's policy: a deadline job asks the spot policy; a
job the planner could not place waits with the planner's reason; a planned placement is
taken while it is still possible; otherwise one placement decision is made now. A paid
choice still waits while the lab's own free machines fit and are only busy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

from skyd.clock import Clock
from skyd.config import RecoverySettings
from skyd.market.availability_grid import ZoneHistory
from skyd.market.live import LiveMarket
from skyd.model import Candidate, ExclusionReason, JobState
from skyd.policy import POLICIES, Decision, PolicyState
from skyd.scheduler import recovery
from skyd.scheduler.blocks import ScopeBlocks
from skyd.scheduler.changeover import Changeover, configured
from skyd.scheduler.interfaces import PlanView
from skyd.scheduler.placement import PlacementContext, PlacementOutcome, Placer, job_filters
from skyd.spec import TaskSpec
from skyd.spec.extras import alternative_for
from skyd.store.records import EventRecord, JobRecord


class AvailabilityView(Protocol):
    """Recorded spot availability per offering key (skyd.market.availability_log)."""

    def zone_history(self, scope: str, since: float) -> ZoneHistory: ...


class ChangeoverView(Protocol):
    """The changeover measured of recent launches (skyd.scheduler.changeover_log)."""

    def for_clouds(self, clouds: Iterable[str]) -> Changeover: ...


class DeadlineView(NamedTuple):
    """The spot policy's view of a job, the placement decision it was built from, and the
    changeover it plans with (and where that came from)."""

    state: PolicyState
    outcome: PlacementOutcome
    changeover: Changeover


@dataclass(frozen=True, slots=True)
class Choice:
    provider: str
    candidate: Candidate


@dataclass(frozen=True, slots=True)
class Start:
    """Start the job on `choice`; `placement` is what the store records about why."""

    choice: Choice
    placement: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Wait:
    reason: str


def placement_json(choice: Choice, outcome: PlacementOutcome) -> dict[str, Any]:
    offer = choice.candidate.offer
    price = choice.candidate.hourly_price_micros / 1_000_000
    chosen = outcome.decision.chosen
    return {
        "provider": choice.provider,
        "key": choice.candidate.key,
        **offer.placement_fields(),
        "spot": choice.candidate.spot,
        "hourly_price": price,
        "expected_cost": chosen.expected_cost_micros / 1_000_000 if chosen else None,
        # moving the task's data there (part of expected_cost; data-aware placement)
        "egress_cost": chosen.egress_cost_micros / 1_000_000 if chosen else None,
        "expected_hours": chosen.expected_hours if chosen else None,
        "why": outcome.decision.reason,
    }


class Selector:
    """Answers "where would this job start now?" from blocks, free capacity, plans and prices.

    `providers` is only asked for `free_slots()` (a provider without it never fills up)."""

    def __init__(
        self,
        *,
        placer: Placer,
        market: LiveMarket,
        clock: Clock,
        blocks: ScopeBlocks,
        providers: Mapping[str, object],
        recovery_settings: RecoverySettings,
        step_seconds: float,
        availability: AvailabilityView | None = None,
        changeovers: ChangeoverView | None = None,
    ) -> None:
        self.placer = placer
        self.availability = availability
        self.changeovers = changeovers
        self.market = market
        self.clock = clock
        self.blocks = blocks
        self.providers = providers
        self.recovery = recovery_settings
        self.step_seconds = step_seconds
        # decisions made while a job still ran, for its next placement to carry out
        self._carried: dict[int, Decision] = {}

    def is_full(self, provider: str) -> bool:
        free = getattr(self.providers[provider], "free_slots", None)
        return free is not None and bool(free() <= 0)

    def any_capacity(self) -> bool:
        for provider in self.providers.values():
            free = getattr(provider, "free_slots", None)
            if free is None or free() > 0:
                return True
        return False

    def context(self) -> PlacementContext:
        """Blocks, full providers and market signals as of now (call on the loop)."""
        return PlacementContext(
            blocked=self.blocks.active(self.clock.now()) | frozenset(self.market.unavailable),
            full_providers=frozenset(p for p in self.providers if self.is_full(p)),
            signals=self.market.signals(),
            market_version=self.market.version,
            data_version=self.placer.data.version if self.placer.data is not None else 0,
        )

    def decide(
        self, spec: TaskSpec, deadline: float | None, context: PlacementContext | None = None
    ) -> PlacementOutcome:
        """Where `spec` would go now, given blocks and free capacity (also for explain).
        With a `context` it touches no live state, so a worker thread may call it."""
        now = self.clock.now()
        return self.placer.decide(
            spec,
            deadline_hours=None if deadline is None else max(0.0, (deadline - now) / 3600.0),
            context=context or self.context(),
        )

    def select(
        self,
        job: JobRecord,
        spec: TaskSpec,
        plan: PlanView,
        events: Callable[[], Sequence[EventRecord]],
    ) -> Start | Wait:
        """Where `job` starts now, or why it waits (`events`: its history, read on demand).

        A pipeline stage whose inputs come from where the stage before ran is placed now,
        with that egress (the plan was made before that stage had run anywhere)."""
        upstream = spec.upstream is not None
        deadline_choice = None if upstream else self.deadline_choice(job, spec, events)
        planned = None
        if deadline_choice is None and not upstream:
            if job.id in plan.unplaced_reason:
                return Wait(f"waiting: {plan.unplaced_reason[job.id]}")
            planned = self.planned_choice(job, plan)
        if isinstance(deadline_choice, str):
            return Wait(f"waiting: {deadline_choice}")
        if planned is not None:
            busy = self.free_capacity_busy(spec, job, planned.candidate) or self.no_room_now(
                spec, planned
            )
            if busy is not None:
                return Wait(busy)
            placement = dict(planned_placement(job, plan) or {}, provider=planned.provider)
            return Start(planned, placement)
        if deadline_choice is not None:
            return Start(*deadline_choice)
        outcome = self.decide(spec, job.deadline)
        candidate = outcome.candidate
        if candidate is None or outcome.provider is None:
            return Wait(f"waiting: {outcome.decision.reason}")
        choice = Choice(outcome.provider, candidate)
        busy = self.free_capacity_busy(spec, job, candidate, outcome) or self.no_room_now(
            spec, choice
        )
        if busy is not None:
            return Wait(busy)
        placement = placement_json(choice, outcome)
        if spec.upstream is not None:
            # shown by `skyctl show` and in the job's events: whose data it priced, and where
            up = spec.upstream
            placement["inputs_from"] = {
                "stage": up.stage,
                "job": up.job_id,
                "cloud": up.cloud,
                "region": up.region,
                "gigabytes": sum(up.gigabytes.values()),
            }
        return Start(choice, placement)

    def planned_choice(self, job: JobRecord, plan: PlanView) -> Choice | None:
        """The planner's choice for a waiting job, if it is still possible right now."""
        placement = planned_placement(job, plan) or {}
        if not placement.get("planned"):
            return None
        offer = self.market.catalog.offer_by_key(str(placement.get("offer_key")))
        if offer is None:
            return None
        spot = bool(placement.get("spot"))
        price = offer.hourly_micros(spot)
        provider = self.market.provider_for(offer.cloud)
        blocked = self.blocks.active(self.clock.now())
        scopes = {
            offer.cloud,
            f"{offer.cloud}/{offer.region}",
            f"{offer.cloud}/{offer.region}/{offer.zone}",
            offer.key,
        }
        if spot:
            scopes.add(f"{offer.key}/spot")
            blocked = blocked | frozenset(self.market.unavailable)
        if price is None or provider is None or self.is_full(provider) or scopes & blocked:
            return None
        live = self.market.spot_prices.get(offer.key) if spot else None
        return Choice(provider, Candidate(offer, spot, live or price))

    def no_room_now(self, spec: TaskSpec, choice: Choice) -> str | None:
        """Why a pool that is not full still cannot take this job now (a `cpus: 2` task
        and one free local slot), or None. The job waits for room rather than launching
        into a capacity error, which would block the whole pool for every job."""
        room = getattr(self.providers[choice.provider], "no_room_for", None)
        if room is None:
            return None
        alt = alternative_for(spec, choice.candidate.offer)
        why = room(
            alt.cpus.value if alt.cpus is not None else None,
            alt.memory_gib.value if alt.memory_gib is not None else None,
            spec.num_nodes,
        )
        return None if why is None else f"waiting: {why}"

    def free_capacity_busy(
        self,
        spec: TaskSpec,
        job: JobRecord,
        paid: Candidate,
        outcome: PlacementOutcome | None = None,
    ) -> str | None:
        """Why a paid choice should wait (None: it need not): the lab's own free machines can
        run the job and are only busy, and no deadline asks for speed."""
        if paid.hourly_price_micros == 0 or job.deadline is not None:
            return None
        outcome = outcome or self.decide(spec, job.deadline)
        free_but_busy = [
            v
            for v in outcome.decision.candidates
            if v.excluded == ExclusionReason.NO_QUOTA and v.hourly_price_micros == 0
        ]
        if not free_but_busy:
            return None
        where = free_but_busy[0].candidate.offer
        return (
            f"waiting for free capacity on {where.cloud} rather than paying "
            f"${paid.hourly_price_micros / 1_000_000:.2f}/h on {paid.offer.cloud} "
            "(give the job a deadline to let skyd pay)"
        )

    def _history_since(self, submitted: float) -> Callable[[str], ZoneHistory] | None:
        """Each offering's recorded availability from `history_hours` before the job was
        submitted until now (the window's start stays put, as in bench.spot, so the
        history only changes when availability does); None: the policy gets none."""
        view = self.availability
        hours = self.recovery.history_hours
        if view is None or hours <= 0:
            return None
        since = submitted - hours * 3600.0
        return lambda scope: view.zone_history(scope, since)

    def deadline_state(
        self,
        job: JobRecord,
        spec: TaskSpec,
        events: Callable[[], Sequence[EventRecord]],
        running: recovery.RunningOn | None = None,
    ) -> DeadlineView | None:
        """The spot policy's view of `job` now (`running`: where it runs), and the placement
        decision it was built from; None when the policy does not own the job's timing."""
        job_hours = spec.estimated_hours()
        if not recovery.policy_driven(spec, job) or job_hours is None or job.deadline is None:
            return None
        now = self.clock.now()
        filters = [replace(f, spot=None) for f in job_filters(spec, self.market)]
        # The placer only lists the offers and their prices here: the policy owns the
        # deadline (from the work actually left; with the job's whole estimate held against
        # the time left, a part-done job's spot offers were all ruled too late) and spot's
        # risk (from each zone's recorded availability; with the placer's preemption rate,
        # raised by every preemption it saw, spot was ruled "never finishes" after four).
        context = self.context()
        if context.signals is not None:
            neutral = replace(
                context.signals, preemptions_per_hour={}, default_preemptions_per_hour=0.0
            )
            context = replace(context, signals=neutral)
        outcome = self.placer.decide(spec, context=context, filters=filters)
        views = outcome.decision.candidates
        last_region = (job.placement or {}).get("region")
        last_cloud = (job.placement or {}).get("cloud")
        last = recovery.RunningOn.of(job.placement)
        state = recovery.policy_state(
            history=self._history_since(job.created_at),
            views=views,
            unavailable=frozenset(self.market.unavailable),
            job_hours=job_hours,
            done_hours=recovery.running_seconds(events(), now) / 3600.0,
            deadline_hours=(job.deadline - job.created_at) / 3600.0,
            elapsed_hours=(now - job.created_at) / 3600.0,
            changeover_hours=self.recovery.changeover_hours,
            step_hours=self.step_seconds / 3600.0,
            checkpoint_region=f"{last_cloud}/{last_region}" if last_region else None,
            running=running,
            last_zone=None if last is None else last.spot_zone,
        )
        if state is None:
            return None
        changeover = self.changeover_for(state)
        state = replace(state, changeover_hours=changeover.hours)
        return DeadlineView(state, outcome, changeover)

    def changeover_for(self, state: PolicyState) -> Changeover:
        """The changeover to plan with: the configured one, or the one measured of recent
        launches on the clouds the policy may choose between (`state`'s), if longer."""
        if self.changeovers is None:
            return configured(self.recovery.changeover_hours)
        places = [z.zone for z in state.zones] + list(state.on_demand_prices)
        return self.changeovers.for_clouds({place.split("/", 1)[0] for place in places})

    def carry(self, job_id: int, decision: Decision) -> None:
        """Have the job's next placement carry out `decision`, made while it still ran."""
        self._carried[job_id] = decision

    def deadline_choice(
        self, job: JobRecord, spec: TaskSpec, events: Callable[[], Sequence[EventRecord]]
    ) -> tuple[Choice, dict[str, Any]] | str | None:
        """For a job with a deadline and the `deadline` strategy, the spot policy decides
        spot-or-on-demand and where; None when it does not apply, a reason when it waits."""
        built = self.deadline_state(job, spec, events)
        carried = self._carried.pop(job.id, None)
        if built is None:
            return None
        state, outcome, changeover = built
        views = outcome.decision.candidates
        picked = recovery.choose(POLICIES[self.recovery.policy], state, views, carried)
        facts = recovery.history_facts(state)
        history = recovery.history_lines(facts)
        if picked.view is None:
            return f"{picked.reason}; {changeover.text()}; {recovery.history_text(history)}"
        candidate = picked.view.candidate
        provider = self.market.provider_for(candidate.offer.cloud)
        if provider is None:
            return f"{picked.reason}; no enabled provider for {candidate.offer.cloud}"
        choice = Choice(provider, candidate)
        placement = placement_json(choice, outcome)
        placement.update(
            why=picked.reason,
            # what availability history each zone showed the policy (skyctl show, events)
            history=history,
            spot_history=facts,
            # the changeover the policy planned with, and whether it was measured
            changeover=changeover.text(),
            changeover_figures=changeover.figures(),
            expected_cost=picked.view.expected_cost_micros / 1_000_000,
            expected_hours=picked.view.expected_hours,
        )
        return choice, placement


def planned_placement(job: JobRecord, plan: PlanView) -> dict[str, Any] | None:
    """Where a waiting job is planned to go (the planner's memory, else the store)."""
    if job.state in (JobState.PENDING, JobState.RECOVERING):
        held = plan.planned.get(job.id)
        if held is not None:
            return held
    return job.placement

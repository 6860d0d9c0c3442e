"""PolicyMoves on its own: when a running deadline job's policy is asked again, what a move
carries, and how the running offering enters the policy's view (recovery.RunningOn)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from skyd.clock import VirtualClock
from skyd.config import RecoverySettings
from skyd.model import JobState
from skyd.policy import Decision, PolicyState, Target, ZoneMarket
from skyd.scheduler import recovery
from skyd.scheduler.changeover import configured
from skyd.scheduler.moving import LOOK_AGAIN_SECONDS, PolicyMoves
from skyd.scheduler.placement import PlacementOutcome
from skyd.scheduler.recovery import RunningOn
from skyd.scheduler.selection import DeadlineView, Selector
from skyd.spec import TaskSpec
from skyd.spec.parse import parse_task
from skyd.store.records import EventRecord, JobRecord
from skyd.testing.records import job_record

ON_DEMAND_HERE = {
    "cloud": "sim",
    "region": "r1",
    "zone": "sim-a",
    "spot": False,
    "offer_key": "sim/r1/sim-a/p3.2xlarge",
    "hourly_price": 3.0,
}
SPOT_A = Target.spot("sim/r1/sim-a", "sim/r1")
DEADLINE_TASK = parse_task(
    "name: j\nestimated_runtime: 10h\ndeadline: 30h\njob_recovery:\n  strategy: deadline\n"
    "run: 'true'\n"
)
JOB = job_record(
    state=JobState.RUNNING,
    spec_json=DEADLINE_TASK.to_json(),
    started_at=0.0,
    deadline=30 * 3600.0,
    placement=ON_DEMAND_HERE,
)


@dataclass
class FakeMarket:
    version: int = 1


@dataclass
class FakeSelector:
    """What PolicyMoves reads of the Selector: the market's version, the policy's name, the
    job's state (the spot zone's availability is the test's to set) and `carry`."""

    spot_up: bool
    market: FakeMarket = field(default_factory=FakeMarket)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    asked: int = 0
    carried: dict[int, Decision] = field(default_factory=dict)

    def deadline_state(
        self,
        job: JobRecord,
        spec: TaskSpec,
        events: Callable[[], Sequence[EventRecord]],
        running: RunningOn | None = None,
    ) -> DeadlineView | None:
        self.asked += 1
        assert running is not None
        zone = ZoneMarket("sim/r1/sim-a", "sim/r1", self.spot_up, 1.0)
        state = PolicyState(
            job_hours=10.0,
            done_hours=1.0,
            deadline_hours=30.0,
            elapsed_hours=1.0,
            changeover_hours=0.2,
            current=running.target,
            zones=(zone,),
            on_demand_prices={"sim/r1": 3.0},
        )
        return DeadlineView(state, cast(PlacementOutcome, None), configured(0.2))

    def carry(self, job_id: int, decision: Decision) -> None:
        self.carried[job_id] = decision


def _running(placement: dict[str, Any] | None = None) -> JobRecord:
    return JOB if placement is None else replace(JOB, placement=placement)


def _moves(selector: FakeSelector, clock: VirtualClock) -> PolicyMoves:
    return PolicyMoves(selector=cast(Selector, selector), clock=clock)


def test_on_demand_is_left_for_spot_with_ample_slack_and_the_decision_is_carried() -> None:
    selector, clock = FakeSelector(spot_up=True), VirtualClock(0.0)
    move = _moves(selector, clock).check(_running(), list)
    assert move is not None
    assert move.decision.target == SPOT_A
    assert move.data == {
        "from": "on_demand:sim/r1",
        "to": "spot:sim/r1/sim-a",
        "why": "spot is back",
        "changeover": "changeover 0.20 h (configured; no launch measured yet)",
    }
    assert move.reason == "skyd: moving from on_demand:sim/r1 to spot:sim/r1/sim-a (spot is back)"
    assert selector.carried[JOB.id] == move.decision


def test_a_kept_decision_is_not_asked_again_until_the_market_or_the_time_moves() -> None:
    selector, clock = FakeSelector(spot_up=False), VirtualClock(0.0)
    moves = _moves(selector, clock)
    job = _running()
    assert moves.check(job, list) is None  # spot down: bridging on demand goes on
    assert moves.check(job, list) is None
    assert selector.asked == 1
    selector.market.version += 1  # availability or prices changed
    assert moves.check(job, list) is None
    assert selector.asked == 2
    clock.set(LOOK_AGAIN_SECONDS)  # the policy named no time: look again all the same
    assert moves.check(job, list) is None
    assert selector.asked == 3
    assert selector.carried == {}


def test_only_running_jobs_with_a_known_placement_are_asked() -> None:
    selector, clock = FakeSelector(spot_up=True), VirtualClock(0.0)
    moves = _moves(selector, clock)
    assert moves.check(replace(_running(), state=JobState.SETTING_UP), list) is None
    assert moves.check(_running({"cloud": "sim"}), list) is None  # an older record
    no_deadline = replace(JOB, id=8, spec_json='{"name": "j", "run": "true"}')
    assert moves.check(no_deadline, list) is None
    selector.market.version += 1
    clock.set(2 * LOOK_AGAIN_SECONDS)
    assert moves.check(no_deadline, list) is None  # never the policy's: not looked at again
    assert selector.asked == 0


def test_the_running_offering_counts_as_up_whatever_blocks_or_quotas_say() -> None:
    spot_here = dict(ON_DEMAND_HERE, spot=True, hourly_price=1.2)
    running = recovery.RunningOn.of(spot_here)
    assert running is not None and running.target == SPOT_A
    zones: dict[str, ZoneMarket] = {}
    on_demand: dict[str, float] = {}
    running.add_to(zones, on_demand, None)  # its own instance filled the zone's quota
    assert zones["sim/r1/sim-a"].available and zones["sim/r1/sim-a"].spot_price == 1.2
    # the market marks the zone unavailable (a refused launch elsewhere): the live price stays
    zones = {"sim/r1/sim-a": ZoneMarket("sim/r1/sim-a", "sim/r1", False, 0.9)}
    running.add_to(zones, on_demand, None)
    assert zones["sim/r1/sim-a"].available and zones["sim/r1/sim-a"].spot_price == 0.9
    assert on_demand == {}
    on_demand_here = recovery.RunningOn.of(ON_DEMAND_HERE)
    assert on_demand_here is not None
    on_demand_here.add_to(zones, on_demand, None)
    assert on_demand == {"sim/r1": 3.0}
    assert recovery.RunningOn.of(None) is None
    assert recovery.RunningOn.of(dict(ON_DEMAND_HERE, spot=True, zone=None)) is None

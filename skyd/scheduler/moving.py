"""Whether a running deadline job should move: the spot policy asked again while it runs.

The policy that placed a deadline job also leaves on demand for spot that has come back,
and spot priced above on demand (bench.spot replays exactly that). So while such a job
runs, it is asked again, with where the job runs as its current target, whenever its
answer may have changed: the market moved (availability or prices), or the time the
policy gave for looking again has come. When the answer names another target, the job
moves: the attempt is stopped as on a cancel (its process gets the grace to checkpoint),
and its next placement carries the decision out (`Selector.carry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from skyd.clock import Clock
from skyd.model import JobState
from skyd.policy import POLICIES, Decision
from skyd.scheduler import recovery
from skyd.scheduler.selection import Selector
from skyd.spec import TaskSpec
from skyd.store.records import EventRecord, JobRecord

# Between market changes the policy's answer changes only at the time it names; with no
# time named, look again this often all the same (the job's own progress moves the slack).
LOOK_AGAIN_SECONDS = 600.0
MAX_REMEMBERED = 10_000
NEVER = -1  # in place of a market version: a job the policy does not own


@dataclass(frozen=True, slots=True)
class Move:
    """Stop the job's attempt and place it again, carrying out `decision`."""

    decision: Decision
    reason: str
    data: dict[str, object]


class PolicyMoves:
    """Asks the spot policy about running deadline jobs, at most when its answer may change."""

    def __init__(self, *, selector: Selector, clock: Clock) -> None:
        self.selector = selector
        self.clock = clock
        # job id -> (look again at, market version then)
        self._looked: dict[int, tuple[float, int]] = {}

    def check(self, job: JobRecord, events: Callable[[], Sequence[EventRecord]]) -> Move | None:
        """The move the policy wants for `job` now, or None (stay)."""
        if job.state != JobState.RUNNING:
            return None
        now = self.clock.now()
        version = self.selector.market.version
        looked = self._looked.get(job.id)
        if looked is not None and now < looked[0] and looked[1] in (version, NEVER):
            return None
        if len(self._looked) > MAX_REMEMBERED:
            self._looked.clear()  # ended jobs' entries: forgetting costs one more look each
        running = recovery.RunningOn.of(job.placement)
        spec = TaskSpec.from_json(job.spec_json)
        if running is None or not recovery.policy_driven(spec, job):
            # never the policy's to move (no deadline, another strategy, an older record):
            # not looked at again, whatever the market does
            self._looked[job.id] = (float("inf"), NEVER)
            return None
        built = self.selector.deadline_state(job, spec, events, running)
        if built is None:  # nothing to choose between now: look again when the market moves
            self._looked[job.id] = (float("inf"), version)
            return None
        state = built.state
        policy = POLICIES[self.selector.recovery.policy]
        decision = policy.decide(state)
        wait = decision.recheck_after_hours
        again = LOOK_AGAIN_SECONDS if wait is None else min(LOOK_AGAIN_SECONDS, wait * 3600.0)
        self._looked[job.id] = (now + again, version)
        if decision.keeps(running.target):
            return None
        self._looked.pop(job.id, None)
        self.selector.carry(job.id, decision)
        reason = (
            f"{policy.name}: moving from {running.target} to {decision.target} ({decision.reason})"
        )
        return Move(
            decision,
            reason,
            {
                "from": str(running.target),
                "to": str(decision.target),
                "why": decision.reason,
                "changeover": built.changeover.text(),
            },
        )

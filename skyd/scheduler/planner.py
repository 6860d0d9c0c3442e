"""Re-optimization: the waiting queue placed as a whole (CP-SAT) whenever conditions change.

Triggers are events on the bus — a submit, a job ending (capacity freed), a market change,
a failed launch (a scope got blocked), a preemption, quota or credit changes — debounced so
a burst costs one solve. The pass itself (reading the queue, each job's options, the model
and its solve: skyd.scheduler.plan_core) runs in the planner's own process
(skyd.scheduler.plan_process), never on the loop nor in a thread that takes the loop's GIL;
the loop only applies the compact result: writes and events in small chunks. A waiting
job's planned placement changes only when the new one is cheaper by more than the
hysteresis margin or the old one is no longer possible, so jobs do not flap between
near-equal offerings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from skyd.clock import Clock
from skyd.config import CloudSshSettings, RecoverySettings
from skyd.events import EventBus
from skyd.model import TERMINAL_STATES, JobState, Offer
from skyd.optimizer import CreditPool, ProjectBudget, Quota, SolverLimits
from skyd.scheduler.changeover_log import ChangeoverLog
from skyd.scheduler.placement import PlacementContext, PlacementOutcome
from skyd.scheduler.plan_core import PlanCore, PlanRequest, PlanResult
from skyd.scheduler.plan_process import PlanBackend, PlannerCrashed, ThreadPlanner
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import jobs as job_store

log = logging.getLogger("skyd.planner")

_TERMINAL_VALUES = frozenset(s.value for s in TERMINAL_STATES)
_WAITING_STATES = (JobState.PENDING, JobState.RECOVERING)
REPLAN_KINDS = frozenset({"submitted", "market", "launch_failed", "preempted", "quota", "credit"})
MIN_SOLVE_INTERVAL_SECONDS = 1.0
APPLY_CHUNK = 20  # placements written per transaction before the loop serves others
DEBOUNCE_SECONDS = 0.5
MAX_CRASH_BACKOFF_SECONDS = 60.0


class Planner:
    """Triggers, the loop's side of each pass, and the planner's memory (`planned`,
    `unplaced_reason`). `backend` runs the passes (default: a worker thread over `decide`);
    the daemon gives it a `ChildPlanner`."""

    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        decide: Callable[[TaskSpec, float | None, PlacementContext], PlacementOutcome],
        context: Callable[[], PlacementContext],
        quotas: Callable[[], Sequence[Quota]] = lambda: (),
        pools: Callable[[], Sequence[CreditPool]] = lambda: (),
        budgets: Callable[[], Sequence[ProjectBudget]] = lambda: (),
        time_limit_seconds: float = 2.0,
        changeover_hours: float = RecoverySettings.changeover_hours,
        checkpoint_sync_s: float = CloudSshSettings.checkpoint_sync_s,
        offer_of: Callable[[dict[str, Any]], Offer | None] = lambda _placement: None,
        backend: PlanBackend | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self._context = context
        self._quotas = quotas
        self._pools = pools
        self._budgets = budgets
        self._wake = asyncio.Event()
        self.unplaced_reason: dict[int, str] = {}
        # waiting job → its planned placement (first plans are kept here, not written)
        self.planned: dict[int, dict[str, Any]] = {}
        self._last_solve = -MIN_SOLVE_INTERVAL_SECONDS
        self._offer_of = offer_of  # read through the lambda below: tests swap it
        limits = SolverLimits(time_limit_seconds=time_limit_seconds)

        def core() -> PlanCore:
            reader = store.reader() if store.path is not None else store
            # a move is priced with the changeover measured of the launches in the store
            changeovers = ChangeoverLog(
                store=reader,
                configured_hours=changeover_hours,
                checkpoint_sync_s=checkpoint_sync_s,
            )
            return PlanCore(
                reader,
                decide,
                limits=limits,
                changeover_for_clouds=changeovers.for_clouds,
                offer_of=lambda placement: self._offer_of(placement),
            )

        self.backend: PlanBackend = backend if backend is not None else ThreadPlanner(core)
        self.last_status: str | None = None
        self.solves = 0  # passes that produced a plan
        self.passes = 0  # every re-optimization pass, whatever it found
        self.global_solves = 0  # passes that solved the coupled (global) model
        self.crashes = 0  # consecutive failed passes of the planner's process

    def request(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        async with self.bus.subscribe() as queue:
            watcher = asyncio.create_task(self._watch(queue))
            try:
                while True:
                    await self._wake.wait()
                    await self.clock.sleep(DEBOUNCE_SECONDS)
                    # under a steady stream of triggers, solve at most this often
                    wait = self._last_solve + MIN_SOLVE_INTERVAL_SECONDS - self.clock.now()
                    if self.crashes:
                        wait = max(wait, min(MAX_CRASH_BACKOFF_SECONDS, 2.0**self.crashes))
                    if wait > 0:
                        await self.clock.sleep(wait)
                    self._wake.clear()
                    self._last_solve = self.clock.now()
                    try:
                        await self.replan_once()
                    except Exception:
                        log.exception("re-optimization failed; the next trigger retries")
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                await self.backend.close()

    async def _watch(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            event = await queue.get()
            # job events carry job states; other events (clusters) carry their own
            ended = event.job_id is not None and event.state in _TERMINAL_VALUES
            if event.kind in REPLAN_KINDS or ended:
                self._wake.set()

    async def replan_once(self) -> PlanResult | None:
        """One pass: the backend plans, the loop applies. A crashed planner process costs
        the plans it held (the scheduler places those jobs itself) and is retried."""
        self.passes += 1
        request = PlanRequest(
            tuple(self._quotas()),
            tuple(self._pools()),
            tuple(self._budgets()),
            self._context(),
            self.clock.now(),
        )
        try:
            result = await self.backend.compute(request)
        except PlannerCrashed as exc:
            self.crashes += 1
            log.error("%s; retrying with a new one (failure %d in a row)", exc, self.crashes)
            # its memory went with it: a new process plans every waiting job again
            self.planned.clear()
            self.unplaced_reason.clear()
            self._wake.set()
            return None
        self.crashes = 0
        if result is None:
            return None
        for job_id in result.forgotten:
            self.planned.pop(job_id, None)
            self.unplaced_reason.pop(job_id, None)
        if result.status == "EMPTY":
            return result
        self.last_status = result.status
        self.solves += 1
        if result.coupled:
            self.global_solves += 1
        await self._apply(result)
        return result

    async def _apply(self, result: PlanResult) -> None:
        """Record the pass's changes. A burst of re-placements means many writes: they go in
        chunks, each one transaction, with the loop free to serve requests between them."""
        now = self.clock.now()
        for move in result.moves:
            event = job_store.record_event(
                self.store,
                move.job_id,
                now=now,
                kind=move.kind,
                reason=move.reason,
                data=move.data,
            )
            self.bus.publish(event)
        self.planned.update(result.planned)
        writes = result.writes
        for start in range(0, len(writes), APPLY_CHUNK):
            chunk = writes[start : start + APPLY_CHUNK]
            events = []
            with self.store.transaction() as conn:
                for job_id, placement, reason in chunk:
                    # the plan was made from a snapshot: leave jobs that started since alone
                    cur = conn.execute(
                        "UPDATE jobs SET placement_json = ? WHERE id = ? AND state IN (?, ?)",
                        (json.dumps(placement), job_id, *(s.value for s in _WAITING_STATES)),
                    )
                    if cur.rowcount:
                        events.append(
                            job_store.append_event(
                                conn,
                                job_id=job_id,
                                at=now,
                                kind="placement",
                                reason=reason,
                                data={"placement": placement, "plan_status": result.status},
                            )
                        )
            for event in events:
                self.bus.publish(event)
            await asyncio.sleep(0)
        for job_id in result.assigned:
            self.unplaced_reason.pop(job_id, None)
        # kept in memory and shown with the job (`skyctl show`): a long queue waiting for
        # capacity would otherwise write an event per job on every pass
        self.unplaced_reason.update(result.unplaced)

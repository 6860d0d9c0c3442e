"""The Accountant: the daemon service that charges instances, enforces budgets and reports."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from skyd.accounting import inputs
from skyd.accounting.accrual import (
    Accrual,
    LedgerRow,
    PoolBook,
    advance,
    extend_open_stretch,
    to_ms,
)
from skyd.accounting.admin import AccountingAdmin
from skyd.accounting.alerts import AlertHook
from skyd.accounting.budgets import Usage
from skyd.accounting.enforcement import BudgetAlert, BudgetEnforcer
from skyd.accounting.prices import PriceSeries, RecordedPrices
from skyd.accounting.records import HoldDecision, Project, UserLimit
from skyd.accounting.reports import costs_report, credits_view
from skyd.accounting.settings import AccountingSettings
from skyd.clock import Clock
from skyd.events import EventBus
from skyd.identity import Caller, user_name
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import credits as credit_store
from skyd.store import jobs as job_store
from skyd.store import ledger as ledger_store

log = logging.getLogger("skyd.accounting")

_ENDED_STATES = frozenset({"TERMINATED", "PREEMPTED"})
_STOPPED_STATES = frozenset({"STOPPED"})
_FAILURE_BACKOFF_SECONDS = (1.0, 5.0, 30.0)


class Accountant:
    """Charges every instance-second at the price in force to its job, user, project and pool.

    `prices` defaults to the price recorded on each instance at launch (plus the configured
    stopped-instance rates); pass a `PriceHistory` (or any `PriceSeries`) to apply market
    price changes mid-run.
    """

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        bus: EventBus,
        settings: AccountingSettings,
        prices: PriceSeries | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bus = bus
        self.settings = settings
        self.prices: PriceSeries = prices or RecordedPrices(settings.stopped_hourly_micros)
        self._last_actions: dict[int, str] = {}
        self.actions_version = 0  # bumped when a running job's or cluster's action changes
        self.enforcer = BudgetEnforcer(store=store, clock=clock, settings=settings)
        self.hook = AlertHook(settings.budget_hook, attempts=settings.budget_hook_attempts)
        self.admin = AccountingAdmin(store=store, clock=clock, bus=bus, settings=settings)
        self._period_ms = round(settings.ledger_period_seconds * 1000)
        # Accrual state of unsettled instances as of the last committed pass; rebuilt from
        # the store when missing (start, or a failed pass).
        self._open: dict[int, Accrual] | None = None
        self.passes = 0  # accrual passes committed since start

    # -- accrual ---------------------------------------------------------------------------

    def ensure_default_project(self) -> None:
        """Create the default project (no budget, open to all) unless it exists."""
        credit_store.ensure_project(self.store, self.settings.default_project, now=self.clock.now())

    async def run(self) -> None:
        """Accrue every `accrual_interval_seconds` until cancelled; a failed pass is retried.

        After each pass, budgets are looked at: crossed warning lines are announced, and the
        scheduler is woken when a running job's action changes, so a budget reached at this
        pass stops or holds its jobs before the next pass charges them again."""
        self.ensure_default_project()
        failures = 0
        while True:
            try:
                self.accrue(self.clock.now() - self.settings.price_settle_seconds)
                self.passes += 1
                failures = 0
                self._wake_scheduler_on_new_actions()
                self.announce_alerts()
            except Exception:
                delay = _FAILURE_BACKOFF_SECONDS[min(failures, len(_FAILURE_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.exception("accrual pass failed; retrying in %.0f s", delay)
                await self.clock.sleep(delay)
                continue
            await self.clock.sleep(self.settings.accrual_interval_seconds)

    def accrue(self, now: float) -> int:
        """Charge every instance up to `now` (or its end); idempotent. Returns ledger rows written.

        Everything of one pass commits together (ledger rows, watermarks and open stretches,
        pool spending, roll-up, job costs), so a crash at any point leaves the books exactly
        as the last pass did.
        """
        now_ms = to_ms(now)  # as ended_at is converted: an end accrued at once settles
        period_ms = self._period_ms
        try:
            with self.store.transaction() as conn:
                self.prices.refresh(conn)
                if self._open is None:
                    accruals = {a.watermark_id: a for a in ledger_store.open_accruals(conn)}
                else:
                    accruals = self._open
                    for fresh in ledger_store.changed_accruals(conn):
                        accruals[fresh.watermark_id] = fresh
                book = PoolBook(credit_store.list_pools(conn))
                rows: list[LedgerRow] = []
                changed: list[Accrual] = []
                for accrual in accruals.values():
                    if not accrual.settled and self._charge(accrual, now_ms, book, period_ms, rows):
                        changed.append(accrual)
                ledger_store.record_charges(conn, rows, changed, book.spent)
        except BaseException:
            self._open = None  # the objects may hold a pass that was rolled back: reload
            raise
        for accrual in changed:
            accrual.reshaped = False
        self._open = {k: a for k, a in accruals.items() if not a.settled}
        return len(rows)

    def _charge(
        self, accrual: Accrual, now_ms: int, book: PoolBook, period_ms: int, rows: list[LedgerRow]
    ) -> bool:
        """Advance one instance to `now_ms` (or its end); False if nothing changed.

        The time since the last pass is charged at the state seen then (running or stopped):
        a stop or start counts from the first pass that sees it, so the scheduler calls
        `accrue` right after recording one. An end counts from the recorded `ended_at`.
        """
        instance = accrual.instance
        end_ms = now_ms
        if instance.ended_at is not None:
            ended_ms = to_ms(instance.ended_at)
            if ended_ms <= now_ms:
                end_ms, accrual.settled = ended_ms, True
        elif instance.state in _ENDED_STATES:
            accrual.settled = True  # ended without a recorded time: charge up to now, then stop
        stopped_now = instance.state in _STOPPED_STATES
        if end_ms <= accrual.accrued_ms and not accrual.settled:
            if stopped_now == accrual.seen_stopped:
                return False
            accrual.seen_stopped = stopped_now
            accrual.reshaped = True
            return True
        if (
            not accrual.settled
            and not accrual.seen_stopped
            and not stopped_now
            and self.prices.is_flat(instance)
            and extend_open_stretch(accrual, end_ms, book, period_ms)
        ):
            return True
        advance(
            accrual,
            end_ms,
            stopped=accrual.seen_stopped,
            prices=self.prices,
            book=book,
            period_ms=period_ms,
            rows=rows,
        )
        if accrual.seen_stopped != stopped_now:
            accrual.seen_stopped = stopped_now
            accrual.reshaped = True
        if accrual.settled:
            accrual.close_stretch(rows)
            accrual.reshaped = True
        return True

    def job_cost_micros(self, job_ids: Sequence[int]) -> dict[int, int]:
        """Exact cost of each job up to the last accrual pass (posted and open stretches)."""
        return ledger_store.job_costs(self.store.conn, job_ids)

    # -- enforcement -----------------------------------------------------------------------

    def resolve_project(self, name: str | None, caller: Caller) -> str:
        """The (existing) project a job or cluster of `caller` charges; see BudgetEnforcer."""
        return self.enforcer.resolve_project(name, caller)

    def check_submit(
        self,
        spec: TaskSpec,
        caller: Caller,
        estimated_hourly_micros: int | None,
        *,
        project: str | None = None,
    ) -> HoldDecision:
        """May `caller` submit `spec` now? See BudgetEnforcer.check_submit."""
        return self.enforcer.check_submit(spec, caller, estimated_hourly_micros, project=project)

    def binds(self) -> bool:
        """Whether any budget or limit is set (else no job is ever held for money)."""
        return credit_store.any_budget_or_limit(self.store.conn)

    def check_job(self, job_id: int, estimated_hourly_micros: int | None) -> HoldDecision:
        """May the waiting job `job_id` start now? (An admin override always lets it.)"""
        return self.check_jobs({job_id: estimated_hourly_micros})[job_id]

    def check_jobs(self, waiting: Mapping[int, int | None]) -> dict[int, HoldDecision]:
        return self.enforcer.check_jobs(waiting)

    def usage_of(self, uid: int) -> Usage:
        return self.enforcer.usage_of(uid)

    def running_over_budget(self) -> list[tuple[int, str]]:
        return self.enforcer.running_over_budget()

    def clusters_over_budget(self) -> list[tuple[int, str]]:
        return self.enforcer.clusters_over_budget()

    def _wake_scheduler_on_new_actions(self) -> None:
        # one read of the books for jobs and clusters together (cluster ids negated)
        jobs, clusters = self.enforcer.over_budget()
        current = dict(jobs)
        current.update({-cid: action for cid, action in clusters})
        if any(self._last_actions.get(key) != action for key, action in current.items()):
            self.actions_version += 1
            self.bus.changed.set()
        self._last_actions = current

    def announce_alerts(self) -> list[BudgetAlert]:
        """Announce each budget line newly crossed: an event, and the hook (in background)."""
        alerts = self.enforcer.new_alerts()
        for alert in alerts:
            event = job_store.record_event(
                self.store,
                None,
                now=self.clock.now(),
                kind="budget",
                reason=alert.message(),
                data=alert.as_json(),
            )
            self.bus.publish(event)
            log.warning("budget: %s", alert.message())
            self.hook.send(alert.as_json())
        return alerts

    # -- views -----------------------------------------------------------------------------

    def budgets(self) -> dict[str, Any]:
        """Every budget that is set, with this month's spending, for people and machines."""
        standing = self.enforcer.standing()
        return {
            "month_start": inputs.iso(inputs.month_start(self.clock.now())),
            "at_budget": self.settings.at_budget,
            "warn_lines": sorted(self.settings.warn_lines),
            "budgets": [
                {
                    "scope": line.scope,
                    "label": line.label,
                    "budget": line.budget_micros / 1_000_000,
                    "spent": line.spent_micros / 1_000_000,
                    "left": line.left_micros / 1_000_000,
                    "percent": (
                        100.0 * line.spent_micros / line.budget_micros
                        if line.budget_micros
                        else 100.0
                    ),
                }
                for line in standing.every_line()
            ],
        }

    def credits(self) -> dict[str, Any]:
        return credits_view(self.store.conn, self.clock.now())

    def costs(self, caller: Caller, *, by: str, since: float | None) -> list[dict[str, Any]]:
        return costs_report(
            self.store.conn,
            by=by,
            since=since,
            viewer_uid=caller.uid,
            viewer_is_admin=caller.is_admin,
            others_jobs_in_full=self.settings.others_jobs_in_full,
        )

    def projects(self) -> list[Project]:
        return credit_store.list_projects(self.store.conn)

    def project_view(self, name: str) -> dict[str, Any]:
        """One project: budget, this month's spending, members, pools it may draw."""
        project = credit_store.get_project(self.store.conn, name)
        if project is None:
            # the same words as at submit, with did-you-mean
            self.enforcer.resolve_project(name, Caller(uid=0, is_admin=True))
        assert project is not None
        standing = self.enforcer.standing()
        spent = standing.spent_by_project.get(project.name, 0)
        budget = project.monthly_budget_micros
        pools = [
            p.name
            for p in credit_store.list_pools(self.store.conn)
            if p.projects is None or project.name in p.projects
        ]
        return {
            "name": project.name,
            "monthly_budget": None if budget is None else budget / 1_000_000,
            "spent_this_month": spent / 1_000_000,
            "percent": None if not budget else round(100.0 * spent / budget, 1),
            "members": [user_name(uid) for uid in project.members],
            "open_to_all": not project.members,
            "pools": pools,
        }

    def user_limits(self) -> list[UserLimit]:
        return credit_store.list_user_limits(self.store.conn)

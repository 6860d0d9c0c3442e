"""The Accountant: the daemon service that charges instances, enforces budgets and runs pools."""

from __future__ import annotations

import logging
import pwd
from collections.abc import Iterable, Mapping, Sequence
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
from skyd.accounting.alerts import AlertHook
from skyd.accounting.budgets import Usage
from skyd.accounting.enforcement import BudgetAlert, BudgetEnforcer
from skyd.accounting.errors import AccountingInputError
from skyd.accounting.prices import PriceSeries, RecordedPrices
from skyd.accounting.records import CreditPool, HoldDecision, Project, UserLimit
from skyd.accounting.reports import costs_report, credits_view
from skyd.accounting.settings import AccountingSettings
from skyd.clock import Clock
from skyd.errors import PermissionDeniedError
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

    # -- administration --------------------------------------------------------------------

    @staticmethod
    def _require_admin(caller: Caller, what: str) -> None:
        if not caller.is_admin:
            raise PermissionDeniedError(
                f"only admins (root or the skyd admin group) may {what}; nothing was changed"
            )

    def add_pool(self, caller: Caller, body: Mapping[str, Any]) -> CreditPool:
        self._require_admin(caller, "add credit pools")
        now = self.clock.now()
        _only(
            body,
            {
                "name",
                "cloud",
                "amount",
                "expires",
                "starts",
                "account",
                "region",
                "projects",
                "users",
            },
        )
        name = inputs.plain_name("name", _required(body, "name"))
        cloud = inputs.cloud_name("cloud", _required(body, "cloud"), self.settings.known_clouds)
        amount = inputs.money_micros("amount", _required(body, "amount"))
        expires = inputs.future_moment("expires", _required(body, "expires"), now)
        starts = inputs.epoch_seconds("starts", body["starts"]) if "starts" in body else now
        if starts >= expires:
            raise AccountingInputError(
                f"starts: the pool would start ({inputs.iso(starts)}) after it expires "
                f"({inputs.iso(expires)})",
                "starts",
            )
        return credit_store.add_pool(
            self.store,
            name=name,
            cloud=cloud,
            amount_micros=amount,
            starts_at=starts,
            expires_at=expires,
            account=inputs.optional_text("account", body.get("account")),
            region=inputs.optional_text("region", body.get("region")),
            by_uid=caller.uid,
            now=now,
            projects=self._project_scope(body.get("projects")),
            users=None if body.get("users") is None else _uids("users", body["users"]),
        )

    def _project_scope(self, value: Any) -> list[str] | None:
        """A pool's `projects`: None (any), or a list of existing project names."""
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise AccountingInputError(
                "projects: expected a non-empty list of project names (or leave it out)",
                "projects",
            )
        names = [inputs.plain_name("projects", v) for v in value]
        known = {p.name for p in credit_store.list_projects(self.store.conn)}
        for name in names:
            if name not in known:
                raise AccountingInputError(
                    f"projects: no project {name!r}; known: {', '.join(sorted(known))}",
                    "projects",
                )
        return names

    def set_pool(self, caller: Caller, ref: str, body: Mapping[str, Any]) -> CreditPool:
        """Change a pool's total amount, expiry, start, account or region."""
        self._require_admin(caller, "change credit pools")
        now = self.clock.now()
        pool = credit_store.get_pool(self.store, ref)
        _only(body, {"amount", "expires", "starts", "account", "region", "projects", "users"})
        if not body:
            raise AccountingInputError(
                "give at least one of amount, expires, starts, account, region, projects, users",
                "amount",
            )
        changes: dict[str, Any] = {}
        if "amount" in body:
            changes["amount_micros"] = inputs.money_micros("amount", body["amount"])
        if "expires" in body:
            changes["expires_at"] = inputs.future_moment("expires", body["expires"], now)
        if "starts" in body:
            changes["starts_at"] = inputs.epoch_seconds("starts", body["starts"])
        for key in ("account", "region"):
            if key in body:
                changes[key] = inputs.optional_text(key, body[key])
        if "projects" in body:
            changes["projects_json"] = credit_store.scope_json(
                self._project_scope(body["projects"])
            )
        if "users" in body:
            users = None if body["users"] is None else _uids("users", body["users"])
            changes["users_json"] = credit_store.scope_json(users)
        starts = changes.get("starts_at", pool.starts_at)
        expires = changes.get("expires_at", pool.expires_at)
        if starts >= expires:
            raise AccountingInputError(
                f"starts: the pool would start ({inputs.iso(starts)}) after it expires "
                f"({inputs.iso(expires)})",
                "starts",
            )
        return credit_store.update_pool(
            self.store, pool.id, changes, kind="pool_set", by_uid=caller.uid, now=now
        )

    def top_up_pool(self, caller: Caller, ref: str, body: Mapping[str, Any]) -> CreditPool:
        self._require_admin(caller, "top up credit pools")
        _only(body, {"amount"})
        amount = inputs.money_micros("amount", _required(body, "amount"), allow_zero=False)
        pool = credit_store.get_pool(self.store, ref)
        return credit_store.top_up_pool(
            self.store, pool.id, amount, by_uid=caller.uid, now=self.clock.now()
        )

    def retire_pool(self, caller: Caller, ref: str) -> CreditPool:
        """Stop a pool paying from now on (what it already paid stays paid)."""
        self._require_admin(caller, "retire credit pools")
        pool = credit_store.get_pool(self.store, ref)
        if pool.retired_at is not None:
            return pool
        now = self.clock.now()
        return credit_store.update_pool(
            self.store, pool.id, {"retired_at": now}, kind="pool_retired", by_uid=caller.uid,
            now=now,
        )  # fmt: skip

    def set_project(self, caller: Caller, name: str, body: Mapping[str, Any]) -> Project:
        self._require_admin(caller, "change projects and budgets")
        _only(body, {"monthly_budget", "members", "add_members", "remove_members"})
        name = inputs.plain_name("name", name)
        current = credit_store.get_project(self.store.conn, name)
        budget = current.monthly_budget_micros if current else None
        if "monthly_budget" in body:
            raw = body["monthly_budget"]
            budget = None if raw is None else inputs.money_micros("monthly_budget", raw)
        members: list[int] | None = None
        if "members" in body:
            members = _uids("members", body["members"])
        if "add_members" in body or "remove_members" in body:
            now_in = set(members if members is not None else (current.members if current else ()))
            now_in |= set(_uids("add_members", body.get("add_members", [])))
            now_in -= set(_uids("remove_members", body.get("remove_members", [])))
            members = sorted(now_in)
        return credit_store.put_project(
            self.store,
            name=name,
            monthly_budget_micros=budget,
            members=members,
            by_uid=caller.uid,
            now=self.clock.now(),
        )

    def set_user_limit(self, caller: Caller, user: str, body: Mapping[str, Any]) -> UserLimit:
        self._require_admin(caller, "change user limits")
        _only(body, {"max_gpus", "max_hourly", "monthly_budget"})
        uid = _uids("user", [user])[0]
        current = credit_store.get_user_limit(self.store.conn, uid)
        max_gpus = current.max_gpus if current else None
        max_hourly = current.max_hourly_micros if current else None
        budget = current.monthly_budget_micros if current else None
        if "monthly_budget" in body:
            raw = body["monthly_budget"]
            budget = None if raw is None else inputs.money_micros("monthly_budget", raw)
        if "max_gpus" in body:
            max_gpus = inputs.optional_count("max_gpus", body["max_gpus"])
        if "max_hourly" in body:
            raw = body["max_hourly"]
            max_hourly = None if raw is None else inputs.money_micros("max_hourly", raw)
        return credit_store.put_user_limit(
            self.store,
            uid,
            max_gpus=max_gpus,
            max_hourly_micros=max_hourly,
            by_uid=caller.uid,
            now=self.clock.now(),
            monthly_budget_micros=budget,
        )

    def set_lab_budget(self, caller: Caller, body: Mapping[str, Any]) -> int | None:
        """Set (or clear, with null) the whole lab's monthly budget."""
        self._require_admin(caller, "change the lab's budget")
        _only(body, {"monthly_budget"})
        raw = _required_key(body, "monthly_budget")
        budget = None if raw is None else inputs.money_micros("monthly_budget", raw)
        credit_store.put_lab_budget(self.store, budget, by_uid=caller.uid, now=self.clock.now())
        return budget

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

    def override_job(self, caller: Caller, job_id: int, note: str = "") -> None:
        """Exempt one job from budgets and limits (admins only)."""
        self._require_admin(caller, "override budgets")
        credit_store.add_override(
            self.store, job_id, by_uid=caller.uid, note=note, now=self.clock.now()
        )
        self.bus.changed.set()  # a held job may start now

    # -- views -----------------------------------------------------------------------------

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


def _required(body: Mapping[str, Any], key: str) -> Any:
    if key not in body or body[key] is None:
        raise AccountingInputError(f"{key}: required", key)
    return body[key]


def _required_key(body: Mapping[str, Any], key: str) -> Any:
    if key not in body:
        raise AccountingInputError(f"{key}: required (null clears it)", key)
    return body[key]


def _only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    known = set(allowed)
    for key in body:
        if key not in known:
            raise AccountingInputError(
                f"{key}: unknown field; allowed: {', '.join(sorted(known))}", key
            )


UID_MAX = 2**32 - 2  # uid_t; (uid_t)-1 means "no user"


def _uids(field: str, values: Any) -> list[int]:
    if not isinstance(values, list):
        raise AccountingInputError(f"{field}: expected a list of user names or uids", field)
    uids: list[int] = []
    for value in values:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= UID_MAX:
            uids.append(value)
        elif isinstance(value, str):
            try:
                uids.append(pwd.getpwnam(value).pw_uid)
            except (KeyError, ValueError):  # ValueError: a NUL in the name
                raise AccountingInputError(f"{field}: no such user {value!r}", field) from None
        else:
            raise AccountingInputError(f"{field}: {value!r} is not a user name or uid", field)
    return uids

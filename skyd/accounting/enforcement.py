"""Budgets and limits applied: which project a job charges, whether it may start, and what
running jobs and clusters get as a project's, a user's or the lab's monthly budget runs out."""

from __future__ import annotations

import difflib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from skyd.accounting import inputs
from skyd.accounting.budgets import (
    BudgetLine,
    Usage,
    alert_lines_crossed,
    budget_action,
    held_gpus,
    judge,
    requested_gpus,
)
from skyd.accounting.errors import AccountingInputError, BudgetExceededError
from skyd.accounting.records import BudgetAction, HoldDecision, Project, UserLimit
from skyd.accounting.settings import AccountingSettings
from skyd.clock import Clock
from skyd.errors import PermissionDeniedError
from skyd.identity import Caller, user_name
from skyd.model import JobState
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import credits as credit_store
from skyd.store import jobs as job_store
from skyd.store import ledger as ledger_store

HOLDING_STATES = frozenset(
    {JobState.PROVISIONING, JobState.SETTING_UP, JobState.RUNNING, JobState.RECOVERING}
)


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A warning line (per mille; 1000 = spent) that a budget crossed this month, announced once."""

    line: BudgetLine
    permille: int

    def message(self) -> str:
        budget = inputs.dollars(self.line.budget_micros)
        spent = inputs.dollars(self.line.spent_micros)
        if self.permille >= 1000:
            return f"{self.line.label} monthly budget of {budget} is spent ({spent})"
        return (
            f"{self.line.label} monthly budget has reached {self.permille / 10:g} % "
            f"({spent} of {budget})"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "scope": self.line.scope,
            "label": self.line.label,
            "line_percent": self.permille / 10,
            "budget": self.line.budget_micros / 1_000_000,
            "spent": self.line.spent_micros / 1_000_000,
            "message": self.message(),
        }


@dataclass(slots=True)
class Standing:
    """What budgets and limits are measured against, read once per decision or batch."""

    projects: dict[str, Project]
    spent_by_project: dict[str, int]  # this month
    spent_by_user: dict[int, int]
    spent_by_lab: int
    lab_budget: int | None
    usage: dict[int, Usage]  # per owner uid, right now
    limits: dict[int, UserLimit]
    overridden: set[int]

    def lines_for(self, owner_uid: int, project: str | None) -> list[BudgetLine]:
        """Every monthly budget a job of `owner_uid` in `project` counts against."""
        lines: list[BudgetLine] = []
        known = self.projects.get(project) if project else None
        if known is not None and known.monthly_budget_micros is not None:
            lines.append(
                BudgetLine(
                    f"project:{known.name}",
                    f"project {known.name}'s",
                    known.monthly_budget_micros,
                    self.spent_by_project.get(known.name, 0),
                )
            )
        limit = self.limits.get(owner_uid)
        if limit is not None and limit.monthly_budget_micros is not None:
            lines.append(
                BudgetLine(
                    f"user:{owner_uid}",
                    f"{user_name(owner_uid)}'s",
                    limit.monthly_budget_micros,
                    self.spent_by_user.get(owner_uid, 0),
                )
            )
        if self.lab_budget is not None:
            lines.append(BudgetLine("lab", "the lab's", self.lab_budget, self.spent_by_lab))
        return lines

    def every_line(self) -> list[BudgetLine]:
        """All budgets that are set: each project's, each user's and the lab's."""
        lines = [
            BudgetLine(
                f"project:{p.name}",
                f"project {p.name}'s",
                p.monthly_budget_micros,
                self.spent_by_project.get(p.name, 0),
            )
            for p in self.projects.values()
            if p.monthly_budget_micros is not None
        ]
        lines += [
            BudgetLine(
                f"user:{uid}",
                f"{user_name(uid)}'s",
                limit.monthly_budget_micros,
                self.spent_by_user.get(uid, 0),
            )
            for uid, limit in self.limits.items()
            if limit.monthly_budget_micros is not None
        ]
        if self.lab_budget is not None:
            lines.append(BudgetLine("lab", "the lab's", self.lab_budget, self.spent_by_lab))
        return lines

    def take(
        self, uid: int, project: str | None, spec: TaskSpec, hourly: int | None, hours: float
    ) -> None:
        """Count an allowed job as if it were running (for the rest of a batch)."""
        held = self.usage.get(uid, Usage())
        self.usage[uid] = Usage(
            gpus=held.gpus + requested_gpus(spec),
            hourly_micros=held.hourly_micros + (hourly or 0),
        )
        if not hourly:
            return
        expected = round(hourly * hours)
        if project is not None:
            self.spent_by_project[project] = self.spent_by_project.get(project, 0) + expected
        self.spent_by_user[uid] = self.spent_by_user.get(uid, 0) + expected
        self.spent_by_lab += expected


class BudgetEnforcer:
    """Reads the books and answers admission and enforcement questions (no writes but alerts)."""

    def __init__(self, *, store: Store, clock: Clock, settings: AccountingSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    # -- admission -------------------------------------------------------------------------

    def resolve_project(self, name: str | None, caller: Caller) -> str:
        """The project a job of `caller` charges: the one it names (which must exist and have
        `caller` as a member, unless an admin), or the default project."""
        if name is None:
            return self.settings.default_project
        project = credit_store.get_project(self.store.conn, name)
        if project is None:
            known = [p.name for p in credit_store.list_projects(self.store.conn)]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise AccountingInputError(
                f"project: {name!r} does not exist; {hint}known projects: "
                f"{', '.join(known) or 'none'} (`skyctl projects` lists them; an admin adds "
                "one with `skyctl projects add NAME`)",
                "project",
            )
        if project.members and caller.uid not in project.members and not caller.is_admin:
            raise PermissionDeniedError(
                f"you are not a member of project {name!r}; ask an admin to add you "
                f"(`skyctl projects members {name} --add {caller.name}`)"
            )
        return project.name

    def hours_of(self, spec: TaskSpec) -> float:
        """The runtime admission counts: the job's estimate, or the stated default."""
        hours = spec.estimated_hours()
        return hours if hours is not None else self.settings.assumed_runtime_hours

    def check_submit(
        self,
        spec: TaskSpec,
        caller: Caller,
        estimated_hourly_micros: int | None,
        *,
        project: str | None = None,
    ) -> HoldDecision:
        """May `caller` submit `spec` (charging `project`, default: resolved from the spec) now?
        Raises PermissionDeniedError (not a member), AccountingInputError (unknown project),
        BudgetExceededError (policy "refuse", or a job that can never fit); else allows or
        returns a hold with reason "budget"."""
        if project is None:
            project = self.resolve_project(spec.project, caller)
        if not credit_store.any_budget_or_limit(self.store.conn):
            # nothing to break: skip reading the books (every running job and the month's
            # ledger), which on a busy daemon was a third of each submit's time on the loop
            return HoldDecision.allow()
        return self._decide(
            self.standing(),
            spec=spec,
            owner_uid=caller.uid,
            project=project,
            hourly=estimated_hourly_micros,
            refuse=self.settings.over_limit_at_submit == "refuse",
        )

    def check_jobs(self, waiting: Mapping[int, int | None]) -> dict[int, HoldDecision]:
        """May these waiting jobs (id → estimated $/h in micro-dollars, in the order they would
        start) start now? Each allowed job counts against the limits and budgets of the ones
        after it, so a batch never lets through more than the limits allow together."""
        standing = self.standing()
        decisions: dict[int, HoldDecision] = {}
        for job_id, hourly in waiting.items():
            job = job_store.get_job(self.store, job_id)
            spec = TaskSpec.from_json(job.spec_json)
            decision = HoldDecision.allow()
            if job_id not in standing.overridden:
                decision = self._decide(
                    standing,
                    spec=spec,
                    owner_uid=job.owner_uid,
                    project=job.project,
                    hourly=hourly,
                    refuse=False,
                    hold_never=True,
                )
            decisions[job_id] = decision
            if not decision.hold:
                standing.take(job.owner_uid, job.project, spec, hourly, self.hours_of(spec))
        return decisions

    def _decide(
        self,
        standing: Standing,
        *,
        spec: TaskSpec,
        owner_uid: int,
        project: str | None,
        hourly: int | None,
        refuse: bool,
        hold_never: bool = False,
    ) -> HoldDecision:
        verdict = judge(
            gpus=requested_gpus(spec),
            hourly_micros=hourly,
            hours=self.hours_of(spec),
            usage=standing.usage.get(owner_uid, Usage()),
            limit=standing.limits.get(owner_uid),
            budgets=standing.lines_for(owner_uid, project),
        )
        if verdict.problem is None:
            return HoldDecision.allow()
        if refuse or (verdict.never and not hold_never):
            raise BudgetExceededError(verdict.problem)
        return HoldDecision.budget(verdict.problem)

    # -- what is spent and held ------------------------------------------------------------

    def standing(self, conn: sqlite3.Connection | None = None) -> Standing:
        conn = conn or self.store.conn
        since = inputs.month_start(self.clock.now())
        burn = credit_store.hourly_burn_by_job(conn)
        usage: dict[int, Usage] = {}
        for row in credit_store.active_jobs(conn, HOLDING_STATES):
            held = usage.get(row["owner_uid"], Usage())
            usage[row["owner_uid"]] = Usage(
                gpus=held.gpus + held_gpus(row["placement_json"], row["spec_json"]),
                hourly_micros=held.hourly_micros + burn.get(row["id"], 0),
            )
        return Standing(
            projects={p.name: p for p in credit_store.list_projects(conn)},
            spent_by_project=ledger_store.spent_by_project(conn, since),
            spent_by_user=ledger_store.spent_by_user(conn, since),
            spent_by_lab=ledger_store.spent_in_total(conn, since),
            lab_budget=credit_store.get_lab_budget(conn),
            usage=usage,
            limits={limit.uid: limit for limit in credit_store.list_user_limits(conn)},
            overridden=credit_store.overridden_jobs(conn),
        )

    def usage_of(self, uid: int) -> Usage:
        """GPUs held and $/h spent by `uid`'s placed jobs right now."""
        return self.standing().usage.get(uid, Usage())

    def _action(
        self,
        standing: Standing,
        owner_uid: int,
        project: str | None,
        ahead: Mapping[str, int],
    ) -> BudgetAction | None:
        """The strongest action any budget of (owner, project) calls for (None = nothing).

        `ahead` is what each budget's running jobs and clusters will spend before the next
        accrual pass: a budget that would be spent by then acts now, so what is spent past a
        budget stays within one pass's worth even when stopping takes a moment."""
        at_budget = BudgetAction(self.settings.at_budget)
        warn = min(self.settings.warn_permille, default=1000)
        strongest: BudgetAction | None = None
        for line in standing.lines_for(owner_uid, project):
            action = budget_action(
                line, warn_permille=warn, at_budget=at_budget, ahead_micros=ahead.get(line.scope, 0)
            )
            if action is None:
                continue
            if action != BudgetAction.WARN:
                return action
            strongest = action
        return strongest

    def _spend_ahead(
        self,
        standing: Standing,
        jobs: list[sqlite3.Row],
        job_burn: Mapping[int, int],
        clusters: list[sqlite3.Row],
        cluster_burn: Mapping[int, int],
    ) -> dict[str, int]:
        """Per budget scope: micro-dollars its running jobs and clusters spend in one pass."""
        hours = self.settings.accrual_interval_seconds / 3600
        ahead: dict[str, int] = {}
        payers = [(r["owner_uid"], r["project"], job_burn.get(r["id"], 0)) for r in jobs]
        payers += [(r["owner_uid"], _project_of(r), cluster_burn.get(r["id"], 0)) for r in clusters]
        for owner_uid, project, burn in payers:
            if burn <= 0:
                continue
            for line in standing.lines_for(owner_uid, project):
                ahead[line.scope] = ahead.get(line.scope, 0) + round(burn * hours)
        return ahead

    def _running(
        self, conn: sqlite3.Connection
    ) -> tuple[list[sqlite3.Row], dict[int, int], list[sqlite3.Row], dict[int, int]]:
        jobs = credit_store.active_jobs(conn, HOLDING_STATES)
        clusters = conn.execute(
            "SELECT id, owner_uid, project, spec_json FROM clusters WHERE state IN ('UP', 'INIT')"
        ).fetchall()
        return (
            jobs,
            credit_store.hourly_burn_by_job(conn),
            clusters,
            credit_store.hourly_burn_by_cluster(conn),
        )

    def running_over_budget(self) -> list[tuple[int, str]]:
        """(job id, action) for every placed job one of whose budgets is at ≥ its first warning
        line: "warn", or "stop" / "hold" per policy once it is spent (or would be by the next
        pass). Jobs with an admin override, and jobs that cost nothing, are left alone."""
        return self.over_budget()[0]

    def clusters_over_budget(self) -> list[tuple[int, str]]:
        """(cluster id, action) for every up cluster whose owner's, project's or the lab's
        budget is at ≥ the first warning line (clusters cost money like jobs do)."""
        return self.over_budget()[1]

    def over_budget(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """(job actions, cluster actions) from one read of the books."""
        conn = self.store.conn
        standing = self.standing(conn)
        if not standing.every_line():
            return [], []
        jobs, job_burn, clusters, cluster_burn = self._running(conn)
        ahead = self._spend_ahead(standing, jobs, job_burn, clusters, cluster_burn)
        job_actions: list[tuple[int, str]] = []
        for row in jobs:
            if row["id"] in standing.overridden or job_burn.get(row["id"], 0) == 0:
                continue
            action = self._action(standing, row["owner_uid"], row["project"], ahead)
            if action is not None:
                job_actions.append((int(row["id"]), action.value))
        cluster_actions: list[tuple[int, str]] = []
        for row in clusters:
            if cluster_burn.get(row["id"], 0) == 0:
                continue
            action = self._action(standing, row["owner_uid"], _project_of(row), ahead)
            if action is not None:
                cluster_actions.append((int(row["id"]), action.value))
        return job_actions, cluster_actions

    def new_alerts(self) -> list[BudgetAlert]:
        """Warning lines (and 100 %) crossed since they were last announced; each is recorded
        as announced in the same transaction, so a crossing is announced once a month."""
        lines_permille = [*self.settings.warn_permille, 1000]
        month = inputs.month_start(self.clock.now())
        now = self.clock.now()
        alerts: list[BudgetAlert] = []
        with self.store.transaction() as conn:
            for line in self.standing(conn).every_line():
                crossed = alert_lines_crossed(line, lines_permille)
                if not crossed:
                    continue
                # announce only the highest new line: crossing 80 % and 95 % in one tick is
                # one message, but both are recorded so neither is said again
                fresh = [
                    m
                    for m in crossed
                    if credit_store.announce_alert(conn, line.scope, month, m, now)
                ]
                if fresh:
                    alerts.append(BudgetAlert(line, max(fresh)))
        return alerts


def _project_of(cluster: sqlite3.Row) -> str | None:
    project = cluster["project"]
    if project is None:  # a cluster from before projects were recorded on clusters
        project = json.loads(cluster["spec_json"]).get("project")
    return str(project) if project is not None else None

"""What the scheduler needs from its neighbours (clusters, budgets, the planner), as Protocols.

The scheduler never imports accounting, clusters or the planner's module: the daemon hands
it objects that fit these shapes. Until it does, null objects answer "nothing to say", so
no step checks for None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from skyd.identity import Caller
from skyd.spec import TaskSpec
from skyd.store.records import InstanceRecord


class ClusterTarget(Protocol):
    """Where a job bound to an interactive cluster runs."""

    @property
    def provider(self) -> str: ...

    @property
    def instances(self) -> Sequence[InstanceRecord]: ...


class ClusterTargets(Protocol):
    def target_for_job(self, job_id: int) -> ClusterTarget | None:
        """None for an ordinary job; raises ConflictError (wait) or NotFoundError (fail)."""
        ...

    def job_env(self, job_id: int) -> dict[str, str]: ...


class HoldAnswer(Protocol):
    @property
    def hold(self) -> bool: ...

    @property
    def message(self) -> str: ...


class SubmitGate(Protocol):
    """Admission of new work, jobs and clusters alike: which project it charges, and whether
    it may start."""

    def resolve_project(self, name: str | None, caller: Caller) -> str | None:
        """The project a job of `caller` charges (its own, checked, or the default)."""
        ...

    def check_submit(
        self,
        spec: TaskSpec,
        caller: Caller,
        estimated_hourly_micros: int | None,
        *,
        project: str | None = None,
    ) -> HoldAnswer:
        """May `caller` submit now? Raises to refuse; a hold keeps the job waiting."""
        ...


class BudgetGate(SubmitGate, Protocol):
    def check_jobs(self, waiting: Mapping[int, int | None]) -> Mapping[int, HoldAnswer]: ...

    def binds(self) -> bool:
        """Whether any budget or limit is set (else no job is ever held for money)."""
        ...

    def running_over_budget(self) -> list[tuple[int, str]]: ...

    @property
    def actions_version(self) -> int:
        """Changes whenever what running jobs should get (warn, stop, hold) changes."""
        ...

    def accrue(self, now: float) -> int: ...


class PlanView(Protocol):
    """The planner's memory: placements not yet written, and why some jobs have none."""

    planned: dict[int, dict[str, Any]]
    unplaced_reason: dict[int, str]


class _Allow:
    hold = False
    message = ""


class NoClusters:
    def target_for_job(self, job_id: int) -> ClusterTarget | None:
        return None

    def job_env(self, job_id: int) -> dict[str, str]:
        return {}


class AdmitAll:
    """The SubmitGate of a daemon without accounting: the project as named, every submit let in."""

    def resolve_project(self, name: str | None, caller: Caller) -> str | None:
        return name

    def check_submit(
        self,
        spec: TaskSpec,
        caller: Caller,
        estimated_hourly_micros: int | None,
        *,
        project: str | None = None,
    ) -> HoldAnswer:
        return _Allow()


class NoBudgets(AdmitAll):
    actions_version = 0

    def check_jobs(self, waiting: Mapping[int, int | None]) -> Mapping[int, HoldAnswer]:
        return {}

    def binds(self) -> bool:
        return False

    def running_over_budget(self) -> list[tuple[int, str]]:
        return []

    def accrue(self, now: float) -> int:
        return 0


class NoPlan:
    def __init__(self) -> None:
        self.planned: dict[int, dict[str, Any]] = {}
        self.unplaced_reason: dict[int, str] = {}

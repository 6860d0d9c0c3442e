"""Budgets as the cluster service sees them: the admission and enforcement it asks of the
accountant (the same budgets, limits and membership as for jobs), and a null default."""

from __future__ import annotations

from typing import Protocol

from skyd.identity import Caller
from skyd.spec import TaskSpec


class _Answer(Protocol):
    @property
    def hold(self) -> bool: ...

    @property
    def message(self) -> str: ...


class ClusterBudgets(Protocol):
    """Admission and enforcement for clusters: the same budgets, limits and membership as
    for jobs (the accountant)."""

    def resolve_project(self, name: str | None, caller: Caller) -> str | None: ...

    def check_submit(
        self,
        spec: TaskSpec,
        caller: Caller,
        estimated_hourly_micros: int | None,
        *,
        project: str | None = None,
    ) -> _Answer: ...

    def clusters_over_budget(self) -> list[tuple[int, str]]: ...


class _Allowed:
    hold = False
    message = ""


class NoClusterBudgets:
    def resolve_project(self, name: str | None, caller: Caller) -> str | None:
        return name

    def check_submit(
        self,
        spec: TaskSpec,
        caller: Caller,
        estimated_hourly_micros: int | None,
        *,
        project: str | None = None,
    ) -> _Answer:
        return _Allowed()

    def clusters_over_budget(self) -> list[tuple[int, str]]:
        return []

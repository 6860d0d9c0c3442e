"""Budgets as the cluster service sees them: the admission and enforcement it asks of the
accountant (the same budgets, limits and membership as for jobs), and a null default."""

from __future__ import annotations

from typing import Protocol

from skyd.scheduler.interfaces import AdmitAll, SubmitGate


class ClusterBudgets(SubmitGate, Protocol):
    """Admission and enforcement for clusters: the same budgets, limits and membership as
    for jobs (the accountant)."""

    def clusters_over_budget(self) -> list[tuple[int, str]]: ...


class NoClusterBudgets(AdmitAll):
    def clusters_over_budget(self) -> list[tuple[int, str]]:
        return []

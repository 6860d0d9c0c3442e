"""What the optimizer needs from accounting: spendable credit pools and projects' budget left."""

from __future__ import annotations

from skyd.accounting.accountant import Accountant
from skyd.accounting.inputs import month_start
from skyd.optimizer.plan import CreditPool as OptimizerPool
from skyd.optimizer.plan import ProjectBudget
from skyd.store import credits as credit_store
from skyd.store import ledger as ledger_store


def optimizer_pools(accountant: Accountant) -> list[OptimizerPool]:
    """Pools that can pay now, with their balance and hours left (identified by pool name)."""
    now = accountant.clock.now()
    return [
        OptimizerPool(
            pool_id=pool.name,
            cloud=pool.cloud,
            balance_micros=pool.balance_micros,
            expires_in_hours=(pool.usable_until - now) / 3600,
            region=pool.region,
            projects=pool.projects,
            users=pool.users,
        )
        for pool in credit_store.list_pools(accountant.store.conn)
        if pool.is_active(now) and pool.balance_micros > 0
    ]


def optimizer_budgets(accountant: Accountant) -> list[ProjectBudget]:
    """What each project with a monthly budget may still spend this month."""
    conn = accountant.store.conn
    spent = ledger_store.spent_by_project(conn, month_start(accountant.clock.now()))
    return [
        ProjectBudget(
            project=project.name,
            remaining_micros=max(0, project.monthly_budget_micros - spent.get(project.name, 0)),
        )
        for project in credit_store.list_projects(conn)
        if project.monthly_budget_micros is not None
    ]

"""Accounting: the exact ledger, credit pools, projects, budgets, limits and cost reports.

The public surface: `Accountant` (a daemon service), `AccountingSettings`, the price series
(`RecordedPrices`, `PriceHistory`, `MarketPrices`, the `PriceSeries` protocol), the records
it returns, and `BudgetExceededError`. HTTP routes are in `skyd.api.accounting_routes`; the
optimizer's inputs in `skyd.accounting.optimizer_inputs`.
"""

from skyd.accounting.accountant import Accountant
from skyd.accounting.errors import AccountingInputError, BudgetExceededError
from skyd.accounting.prices import MarketPrices, PriceHistory, PriceSeries, RecordedPrices
from skyd.accounting.records import (
    BudgetAction,
    ChargedInstance,
    CreditPool,
    HoldDecision,
    Project,
    UserLimit,
)
from skyd.accounting.settings import AccountingSettings

__all__ = [
    "Accountant",
    "AccountingInputError",
    "AccountingSettings",
    "BudgetAction",
    "BudgetExceededError",
    "ChargedInstance",
    "CreditPool",
    "HoldDecision",
    "MarketPrices",
    "PriceHistory",
    "PriceSeries",
    "Project",
    "RecordedPrices",
    "UserLimit",
]

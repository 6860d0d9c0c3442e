"""Accounting: the exact ledger, credit pools, projects, budgets, limits and cost reports.

The public surface: `Accountant` (a daemon service), `AccountingSettings`, the price series
(`RecordedPrices`, `PriceHistory`, `MarketPrices`, the `PriceSeries` protocol), the records
it returns, and `BudgetExceededError`. HTTP routes are in `skyd.api.accounting_routes`; the
optimizer's inputs in `skyd.accounting.optimizer_inputs`.

How money is counted. Every instance accrues from `launched_at` to `ended_at` (or now), in
integer milliseconds, at the price in force (a price series; by default the price recorded at
launch), running or — for the time after a pass that saw it stopped — at the stopped rate.
`Accountant.accrue(now)` charges all instances up to `now` in one transaction: each
instance's watermark, sub-micro-dollar carry and open stretch (the charge since its last
ledger row, at one price and payer) move together with the ledger rows, the pools' spending,
the daily roll-up and the jobs' posted cost, so a crash never charges a second twice or
loses one. A stretch becomes an append-only ledger row when its hourly period ends (periods
are staggered per instance), its price or payer changes, or the instance ends. Pools pay in
order of expiry within the instance's cloud (and scope), each up to its balance; the rest is
cash. Reports and budgets add the open stretches to the posted rows, so they are exact to
the last pass. Data leaving a cloud (checkpoints pulled to the daemon host) is posted at once
as ledger rows of kind 'transfer' (`skyd.accounting.transfers`), once per checkpoint version.
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

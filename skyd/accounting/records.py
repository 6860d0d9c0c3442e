"""Typed accounting records: credit pools, projects, user limits and the instances being charged."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CreditPool:
    """Credits on one cloud (optionally one account/region) usable between `starts_at` and
    `expires_at` (epoch seconds); `balance_micros` is what is left of `amount_micros`."""

    id: int
    name: str
    cloud: str
    account: str | None
    region: str | None
    amount_micros: int
    spent_micros: int
    starts_at: float
    expires_at: float
    retired_at: float | None
    created_at: float
    projects: tuple[str, ...] | None = None  # None: any project may draw it
    users: tuple[int, ...] | None = None  # None: any user may draw it

    def may_pay_for(self, owner_uid: int | None, project: str | None) -> bool:
        """Whether a charge of `owner_uid`'s job in `project` may be paid from this pool."""
        if self.projects is not None and project not in self.projects:
            return False
        return self.users is None or owner_uid in self.users

    @property
    def balance_micros(self) -> int:
        return max(0, self.amount_micros - self.spent_micros)

    @property
    def usable_until(self) -> float:
        """When the pool stops paying: its expiry or its retirement, whichever comes first."""
        if self.retired_at is None:
            return self.expires_at
        return min(self.expires_at, self.retired_at)

    def is_active(self, at: float) -> bool:
        return self.starts_at <= at < self.usable_until


@dataclass(frozen=True, slots=True)
class Project:
    """A group of users sharing a monthly budget (None = no budget)."""

    name: str
    monthly_budget_micros: int | None
    members: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UserLimit:
    """Per-user caps on what may run at once, and a monthly budget; None = no cap."""

    uid: int
    max_gpus: int | None
    max_hourly_micros: int | None
    monthly_budget_micros: int | None = None


@dataclass(frozen=True, slots=True)
class ChargedInstance:
    """What accrual needs to know about one instance (and the job it belongs to)."""

    provider: str
    instance_id: str
    job_id: int | None
    owner_uid: int | None
    project: str | None
    cloud: str
    region: str
    zone: str
    instance_type: str
    spot: bool
    state: str
    hourly_price_micros: int
    launched_at: float
    ended_at: float | None
    account: str | None = None  # the cloud account, where the provider records one


class BudgetAction(enum.StrEnum):
    """What the scheduler should do with a running job whose project nears or passes its budget."""

    WARN = "warn"  # crossed a warning line (80 % and 95 % by default)
    STOP = "stop"  # at 100 %: stop the job (policy "stop")
    HOLD = "hold"  # at 100 %: release its instances and keep it PENDING with reason "budget"


@dataclass(frozen=True, slots=True)
class HoldDecision:
    """The answer to "may this job start now?": `hold` False = go ahead; True = keep it PENDING
    with `reason` (always "budget") and `message` saying which budget or limit binds."""

    hold: bool
    reason: str = ""
    message: str = ""

    @classmethod
    def allow(cls) -> HoldDecision:
        return cls(hold=False)

    @classmethod
    def budget(cls, message: str) -> HoldDecision:
        return cls(hold=True, reason="budget", message=message)

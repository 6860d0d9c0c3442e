"""Accounting settings: accrual cadence, enforcement policy and visibility."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Clouds a credit pool may name: the catalogs' clouds plus skyd's own machine pools.
KNOWN_CLOUDS = ("aws", "gcp", "azure", "lambda", "local", "ssh", "sim")


@dataclass
class AccountingSettings:
    """How often instances are charged, and what happens when a budget or limit binds.

    `over_limit_at_submit`: a submit that would exceed a budget or limit is refused outright
    ("refuse") or accepted and held PENDING with reason `budget` until it fits ("hold").
    `at_budget`: a running job whose project reaches 100 % of its budget is stopped ("stop")
    or released and held PENDING ("hold"); it is warned from `warn_fraction` on.
    `others_jobs_in_full`: non-admins see other users' jobs itemized in cost reports; otherwise
    only as one summary line per user.
    """

    accrual_interval_seconds: float = 60.0
    # The ledger gets a row per instance per period (and per price or payer change); reports
    # and budgets also count the open period, so this trades ledger size for posting lag.
    ledger_period_seconds: int = 3600
    # Charge only up to this long ago, so spot prices reported late still apply (see
    # MarketPrices); 0 charges up to now.
    price_settle_seconds: float = 0.0
    over_limit_at_submit: Literal["refuse", "hold"] = "hold"
    at_budget: Literal["stop", "hold"] = "hold"
    warn_fraction: float = 0.8
    others_jobs_in_full: bool = False
    require_known_project: bool = False
    known_clouds: list[str] = field(default_factory=lambda: list(KNOWN_CLOUDS))
    # What a stopped instance still costs per hour (disks), by "cloud/instance_type"; default 0.
    stopped_hourly_micros: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting (call again after changing fields)."""
        if self.accrual_interval_seconds <= 0:
            raise ValueError(
                "accounting.accrual_interval_seconds must be positive, "
                f"got {self.accrual_interval_seconds!r}"
            )
        if self.ledger_period_seconds <= 0 or 86_400 % self.ledger_period_seconds:
            raise ValueError(
                "accounting.ledger_period_seconds must divide a day (e.g. 900, 3600, 86400), "
                f"got {self.ledger_period_seconds!r}"
            )
        if self.price_settle_seconds < 0:
            raise ValueError(
                "accounting.price_settle_seconds must be 0 or more, "
                f"got {self.price_settle_seconds!r}"
            )
        if not 0 < self.warn_fraction <= 1:
            raise ValueError(
                f"accounting.warn_fraction must be in (0, 1], got {self.warn_fraction!r}"
            )
        if self.over_limit_at_submit not in ("refuse", "hold"):
            raise ValueError(
                "accounting.over_limit_at_submit must be 'refuse' or 'hold', "
                f"got {self.over_limit_at_submit!r}"
            )
        for key, rate in self.stopped_hourly_micros.items():
            if isinstance(rate, bool) or not isinstance(rate, int) or rate < 0:
                raise ValueError(
                    f"accounting.stopped_hourly_micros[{key!r}] must be whole micro-dollars "
                    f"per hour ≥ 0, got {rate!r}"
                )
        if self.at_budget not in ("stop", "hold"):
            raise ValueError(
                f"accounting.at_budget must be 'stop' or 'hold', got {self.at_budget!r}"
            )

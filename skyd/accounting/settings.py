"""Accounting settings: accrual cadence, enforcement policy and visibility."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from skyd.accounting.alerts import check_hook

# Clouds a credit pool may name: the catalogs' clouds plus skyd's own machine pools.
KNOWN_CLOUDS = ("aws", "gcp", "azure", "lambda", "local", "ssh", "sim")


@dataclass
class AccountingSettings:
    """How often instances are charged, and what happens when a budget or limit binds.

    `over_limit_at_submit`: a submit that would exceed a budget or limit is refused outright
    ("refuse") or accepted and held PENDING with reason `budget` until it fits ("hold").
    `at_budget`: a running job (or cluster) whose project's, owner's or the lab's monthly
    budget reaches 100 % is stopped ("stop") or released and held PENDING ("hold") at the
    accrual pass that sees it; each of `warn_lines` crossed is announced once a month (an
    event, and `budget_hook` if set: a command run with the alert as JSON on stdin, or an
    http:// URL on loopback that is POSTed the JSON).
    `default_project`: the project of a job or cluster that names none (created on start,
    open to everyone, no budget until an admin sets one). Unknown project names are refused.
    `assumed_runtime_hours`: what admission counts for a job without `estimated_runtime`.
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
    warn_lines: list[float] = field(default_factory=lambda: [0.8, 0.95])
    others_jobs_in_full: bool = False
    default_project: str = "default"
    assumed_runtime_hours: float = 1.0
    budget_hook: str | None = None
    budget_hook_attempts: int = 3
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
        for line in self.warn_lines:
            if isinstance(line, bool) or not isinstance(line, int | float) or not 0 < line < 1:
                raise ValueError(
                    "accounting.warn_lines must be fractions in (0, 1) such as [0.8, 0.95], "
                    f"got {self.warn_lines!r}"
                )
        if not 0 < self.assumed_runtime_hours <= 24 * 366:
            raise ValueError(
                "accounting.assumed_runtime_hours must be positive (hours), "
                f"got {self.assumed_runtime_hours!r}"
            )
        if (
            not self.default_project
            or not self.default_project.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise ValueError(
                "accounting.default_project must be a plain name (letters, digits, - _ .), "
                f"got {self.default_project!r}"
            )
        check_hook(self.budget_hook)
        if self.budget_hook_attempts < 1:
            raise ValueError(
                "accounting.budget_hook_attempts must be 1 or more, "
                f"got {self.budget_hook_attempts!r}"
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

    @property
    def warn_permille(self) -> list[int]:
        """The warning lines in per mille, ascending (1000 = the whole budget)."""
        return sorted({round(line * 1000) for line in self.warn_lines})

"""The Spend tab: spend by user, project, cloud or credit pool, and each pool's balance, burn
rate and the date it runs out at that rate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from tui.client import DaemonApi
from tui.display import clock_time, dollars
from tui.endpoint_table import EndpointTable

JsonObject = dict[str, Any]

GROUPINGS = ("user", "project", "cloud", "pool")
CREDIT_COLUMNS = (
    "name",
    "cloud",
    "state",
    "balance",
    "burn_per_hour",
    "projected_run_out",
    "runs_out",
    "expires_at",
)
SECONDS_PER = {"hour": 3_600.0, "day": 86_400.0}


def _money(row: JsonObject, key: str) -> float | None:
    value = row.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return value / 1_000_000 if key.endswith("_micros") else float(value)


def with_run_out(rows: list[JsonObject], now: float) -> list[JsonObject]:
    """Adds a `runs_out` column to credit pools that report a balance and a burn rate but
    no run-out date of their own (a zero or negative burn never runs out)."""
    result: list[JsonObject] = []
    for row in rows:
        if any("run" in k and "out" in k for k in row) or any("exhaust" in k for k in row):
            result.append(row)
            continue
        balance_key = next((k for k in row if "remaining" in k or "balance" in k), None)
        burn_key = next((k for k in row if "burn" in k), None)
        balance = _money(row, balance_key) if balance_key else None
        burn = _money(row, burn_key) if burn_key else None
        if balance is None or burn is None:
            result.append(row)
            continue
        per = SECONDS_PER["day"] if "day" in (burn_key or "") else SECONDS_PER["hour"]
        runs_out = now + balance / burn * per if burn > 0 else None
        result.append({**row, "runs_out": clock_time(runs_out) if runs_out else "never"})
    return result


def costs_caption(payload: Any) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get("total"), int | float):
        return f"total {dollars(float(payload['total']))}"
    return None


def credits_caption(payload: Any) -> str | None:
    cash = payload.get("cash") if isinstance(payload, dict) else None
    if not isinstance(cash, dict):
        return None
    spent, burn = cash.get("spent"), cash.get("burn_per_hour")
    if not isinstance(spent, int | float) or not isinstance(burn, int | float):
        return None
    return f"cash (no pool): spent {dollars(float(spent))}, burning {dollars(float(burn))}/h"


class SpendPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "next_grouping", "Group by"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self, api: DaemonApi, now: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.api = api
        self.now = now
        self.grouping = GROUPINGS[0]

    def compose(self) -> ComposeResult:
        yield EndpointTable(
            self.api,
            ("/v1/costs",),
            title=self._costs_title(),
            query={"by": self.grouping},
            hide=frozenset({"key", "amount_micros", "data_transfer_micros"}),
            caption=costs_caption,
            id="spend-costs",
        )
        yield EndpointTable(
            self.api,
            ("/v1/credits",),
            title="credit pools",
            only=CREDIT_COLUMNS,
            decorate=lambda rows: with_run_out(rows, self.now()),
            caption=credits_caption,
            id="spend-credits",
        )

    def _costs_title(self) -> str:
        return f"spend by {self.grouping} (b: change)"

    def action_next_grouping(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]
        costs = self.query_one("#spend-costs", EndpointTable)
        costs.query_params["by"] = self.grouping
        costs.border_title = self._costs_title()
        costs.reload()

    def action_reload(self) -> None:
        for table in self.query(EndpointTable):
            table.reload()

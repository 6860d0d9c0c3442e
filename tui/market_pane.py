"""The Market tab: the cheapest offers per accelerator across clouds (spot and on-demand, with
spot availability) and the price history of the highlighted offer as a sparkline."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Sparkline, Static

from tui.client import ApiError, DaemonApi, DaemonUnavailableError, EndpointMissingError
from tui.display import dollars
from tui.endpoint_table import EndpointTable
from tui.json_table import numeric_series

JsonObject = dict[str, Any]

PRICES_PATH = "/v1/prices"
HISTORY_PATH = "/v1/prices/history"
PRICE_KEYS = ("price", "hourly_price", "spot_price", "usd_per_hour", "price_per_hour")


def offering_id(row: JsonObject) -> str | None:
    """How the history endpoint names the offer in this row."""
    for key in ("offering", "offering_id", "offer_id", "id", "key"):
        value = row.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    parts = [row.get(k) for k in ("cloud", "region", "zone", "instance_type")]
    if row.get("cloud") and row.get("instance_type"):
        return ":".join(str(p) for p in parts if p)
    return None


class MarketPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Refresh prices")]

    def __init__(self, api: DaemonApi, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.api = api
        self.history_for: str | None = None

    def compose(self) -> ComposeResult:
        yield EndpointTable(self.api, (PRICES_PATH,), title="cheapest offers", id="market-offers")
        with Vertical(id="market-history"):
            yield Static(Text("price history: highlight an offer"), id="market-history-label")
            yield Sparkline([], id="market-sparkline")

    @property
    def offers(self) -> EndpointTable:
        return self.query_one("#market-offers", EndpointTable)

    def action_reload(self) -> None:
        self.offers.reload()

    @on(DataTable.RowHighlighted)
    def _offer_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.offers.selected()
        offering = offering_id(row) if row else None
        if offering is not None and offering != self.history_for:
            self.history_for = offering
            self.load_history(offering)

    @work(exclusive=True, group="market-history")
    async def load_history(self, offering: str) -> None:
        label = self.query_one("#market-history-label", Static)
        sparkline = self.query_one("#market-sparkline", Sparkline)
        try:
            payload = await self.api.optional(HISTORY_PATH, {"offering": offering})
        except EndpointMissingError:
            label.update(Text("price history: not available on this daemon yet"))
            return
        except (ApiError, DaemonUnavailableError) as exc:
            label.update(Text(f"price history of {offering}: {exc}"))
            return
        series = numeric_series(payload, PRICE_KEYS)
        sparkline.data = series
        if series:
            label.update(
                Text(
                    f"{offering}: {len(series)} prices, low {dollars(min(series))} "
                    f"high {dollars(max(series))} now {dollars(series[-1])}"
                )
            )
        else:
            label.update(Text(f"{offering}: no recorded prices"))

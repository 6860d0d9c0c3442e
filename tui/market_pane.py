"""The Market tab: per accelerator the cheapest offers across clouds, on-demand and spot, with
spot availability, and the price history of the highlighted offer as a sparkline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Sparkline, Static

from tui.client import (
    ApiError,
    DaemonApi,
    DaemonUnavailableError,
    EndpointMissingError,
    QueryValue,
)
from tui.display import dollars
from tui.endpoint_table import EndpointTable
from tui.json_table import numeric_series, records_of
from tui.market_rows import availability_change, merge_offers

JsonObject = dict[str, Any]

PRICES_PATH = "/v1/prices"
HISTORY_PATH = "/v1/prices/history"
PRICE_KEYS = ("spot_price", "price", "hourly_price", "usd_per_hour", "price_per_hour")
OFFER_COLUMNS = ("gpu", "cloud", "od_price", "spot_price", "avail", "spot_where", "od_where")


def offering_id(row: JsonObject) -> str | None:
    """How the history endpoint names the offer in this row."""
    for key in ("key", "offering", "offering_id", "offer_id", "id"):
        value = row.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    parts = [row.get(k) for k in ("cloud", "region", "zone", "instance_type")]
    if row.get("cloud") and row.get("instance_type"):
        return ":".join(str(p) for p in parts if p)
    return None


def history_summary(offering: str, payload: Any) -> tuple[list[float], str]:
    """The prices to plot and one line about them, numbers first (the offer's name is long)."""
    series = numeric_series(payload, PRICE_KEYS)
    if not series:
        return [], f"no recorded prices yet for {offering}"
    text = (
        f"{dollars(min(series))}–{dollars(max(series))}, now {dollars(series[-1])} "
        f"({len(series)} prices)"
    )
    records, _ = records_of(payload)
    last = records[-1] if records else {}
    if isinstance(last.get("available"), bool):
        text += " · available" if last["available"] else " · NOT available"
    return series, f"{text} · {offering}"


class MarketPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Refresh prices")]

    def __init__(self, api: DaemonApi, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.api = api
        self.history_for: str | None = None
        self.availability: dict[str, bool] = {}

    def compose(self) -> ComposeResult:
        yield EndpointTable(
            self.api,
            (PRICES_PATH,),
            title="cheapest offers per accelerator",
            only=OFFER_COLUMNS,
            fetch=self._fetch_offers,
            id="market-offers",
        )
        with Vertical(id="market-history"):
            yield Static(Text("price history: highlight an offer"), id="market-history-label")
            yield Sparkline([], id="market-sparkline")

    async def _fetch_offers(self, api: DaemonApi, query: Mapping[str, QueryValue]) -> Any:
        on_demand = await api.optional(PRICES_PATH, query)
        spot = await api.optional(PRICES_PATH, {**query, "spot": True})
        if not isinstance(on_demand, list) or not isinstance(spot, list):
            return {"offers": on_demand if not isinstance(on_demand, list) else spot}
        return merge_offers(on_demand, spot, self.availability)

    @property
    def offers(self) -> EndpointTable:
        return self.query_one("#market-offers", EndpointTable)

    def market_event(self, event: JsonObject) -> bool:
        """Remember what a market event says; True when it is one (the offers may have moved)."""
        change = availability_change(event)
        if change is not None:
            self.availability[change[0]] = change[1]
        return event.get("kind") == "market"

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
        series, text = history_summary(offering, payload)
        sparkline.data = series
        label.update(Text(text))

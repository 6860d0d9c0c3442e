"""The Events tab: a scrolling log of what the daemon did and why."""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import RichLog

from tui.display import clock_time

JsonObject = dict[str, Any]

LINES_KEPT = 2_000


def event_line(event: JsonObject, now: float) -> Text:
    """`12:03:04 #17   placed       RUNNING       cheapest spot offer …`: aligned under the
    tab's header; the reason is the point."""
    job = event.get("job_id")
    who = f"#{job}" if job is not None else "skyd"
    line = Text(
        f"{clock_time(event.get('at'), now=now):<8} {who:<5} {event.get('kind', '')!s:<12} "
        f"{event.get('state') or ''!s:<13}"
    )
    line.append(" " + str(event.get("reason") or ""))
    line.rstrip()
    return line


class EventsPane(RichLog):
    """Keeps the last events itself, so that hiding or showing the market's price and
    availability changes (many, and rarely what one is looking for) redraws the log."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "toggle_market", "Market changes on/off"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=LINES_KEPT, wrap=False, auto_scroll=True, markup=False)
        self.received = 0
        self.show_market = True
        self._kept: deque[tuple[JsonObject, float]] = deque(maxlen=LINES_KEPT)

    def shows(self, event: JsonObject) -> bool:
        return self.show_market or event.get("kind") != "market"

    def add(self, event: JsonObject, now: float) -> None:
        self.received += 1
        self._kept.append((event, now))
        if self.shows(event):
            self.write(event_line(event, now))

    def action_toggle_market(self) -> None:
        self.show_market = not self.show_market
        self.clear()
        for event, now in self._kept:
            if self.shows(event):
                self.write(event_line(event, now))
        self.notify("market changes shown" if self.show_market else "market changes hidden")

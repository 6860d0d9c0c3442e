"""The Events tab: a scrolling log of what the daemon did and why."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from tui.display import clock_time

JsonObject = dict[str, Any]

LINES_KEPT = 2_000


def event_line(event: JsonObject, now: float) -> Text:
    """`12:03:04 #17 placed RUNNING  cheapest spot offer …` — the reason is the point."""
    job = event.get("job_id")
    parts = [
        clock_time(event.get("at"), now=now),
        f"#{job}" if job is not None else "skyd",
        str(event.get("kind", "")),
    ]
    if event.get("state"):
        parts.append(str(event["state"]))
    line = Text(" ".join(parts))
    if event.get("reason"):
        line.append("  " + str(event["reason"]))
    return line


class EventsPane(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=LINES_KEPT, wrap=False, auto_scroll=True, markup=False)
        self.received = 0

    def add(self, event: JsonObject, now: float) -> None:
        self.received += 1
        self.write(event_line(event, now))

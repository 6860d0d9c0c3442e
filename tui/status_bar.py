"""The one-line status bar: whether the daemon is reachable, and what the dashboard is doing."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.display import duration
from tui.live_feed import Connected, ConnectionStatus, Disconnected


class StatusBar(Static):
    DEFAULT_CLASSES = "-connecting"

    def on_mount(self) -> None:
        self.update(Text("connecting to skyd…"))

    def show(self, status: ConnectionStatus) -> None:
        self.set_class(isinstance(status, Connected), "-connected")
        self.set_class(isinstance(status, Disconnected), "-disconnected")
        self.remove_class("-connecting")
        if isinstance(status, Connected):
            word = "reconnected" if status.reconnected else "connected"
            self.update(Text(f"● {word} · skyd {status.version}"))
        else:
            retry = duration(status.retry_in) if status.retry_in >= 1 else "a moment"
            self.update(
                Text(
                    f"○ daemon unavailable · reconnecting in {retry} (attempt {status.attempt})"
                    f" · {status.reason}: {status.socket_path}"
                )
            )

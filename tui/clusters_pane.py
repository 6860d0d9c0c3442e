"""The Clusters tab: what is up where, for how long, idle for how long, its autostop setting;
stop or tear down the highlighted cluster after confirming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from tui.client import DaemonApi
from tui.endpoint_table import EndpointTable
from tui.requests import ClusterAction

JsonObject = dict[str, Any]

PATHS = ("/v1/clusters", "/v1/instances")
# What the issue asks first (what is up where, for how long, idle how long, autostop), so it
# fits in 80 columns; the rest scrolls sideways.
CLUSTER_COLUMNS = (
    "name",
    "state",
    "where",
    "up_seconds",
    "idle_seconds",
    "autostop",
    "jobs",
    "instance_type",
    "spot",
    "owner",
)


def cluster_name(row: JsonObject) -> str | None:
    for key in ("name", "cluster", "cluster_name", "id", "instance_id"):
        value = row.get(key)
        if value is not None and not isinstance(value, bool):
            return str(value)
    return None


def _autostop(row: JsonObject) -> str:
    minutes = row.get("autostop.idle_minutes")
    if minutes is None:
        return "off"
    return f"{minutes}m → {'down' if row.get('autostop.down') else 'stop'}"


def cluster_rows(rows: list[JsonObject], now: float) -> list[JsonObject]:
    """Adds what a person asks of a cluster, worked out from the daemon's timestamps: where it
    is, how long it has been up and idle, and its autostop in words."""
    shown: list[JsonObject] = []
    for row in rows:
        if "state" not in row or "up_at" not in row:
            shown.append(row)  # not the daemon's cluster shape: show it as it comes
            continue
        live = row.get("state") in ("UP", "INIT") and row.get("ended_at") is None
        up_at, idle_since = row.get("up_at"), row.get("idle_since")
        active = row.get("active_jobs")
        shown.append(
            {
                **row,
                "where": "/".join(
                    str(p)
                    for p in (row.get("cloud") or row.get("provider"), row.get("region"))
                    if p
                )
                or "-",
                "up_seconds": now - float(up_at) if live and up_at is not None else None,
                "idle_seconds": now - float(idle_since)
                if live and idle_since is not None
                else None,
                "autostop": _autostop(row),
                "jobs": len(active) if isinstance(active, list) else active,
            }
        )
    return shown


class ClustersPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "act('stop')", "Stop"),
        Binding("d", "act('down')", "Down"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self, api: DaemonApi, now: Callable[[], float], *, id: str | None = None):
        super().__init__(id=id)
        self.api = api
        self.now = now

    def compose(self) -> ComposeResult:
        yield EndpointTable(
            self.api,
            PATHS,
            title="clusters (t: stop, d: down)",
            only=CLUSTER_COLUMNS,
            decorate=lambda rows: cluster_rows(rows, self.now()),
            id="clusters-table",
        )

    @property
    def clusters(self) -> EndpointTable:
        return self.query_one("#clusters-table", EndpointTable)

    def action_reload(self) -> None:
        self.clusters.reload()

    def action_act(self, action: str) -> None:
        row = self.clusters.selected()
        name = cluster_name(row) if row else None
        if name is None:
            self.notify("highlight a cluster first", severity="warning")
            return
        self.post_message(ClusterAction(action, name))

"""The Clusters tab: what is up where, for how long, idle for how long, its autostop setting;
stop or tear down the highlighted cluster after confirming."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from tui.client import DaemonApi
from tui.endpoint_table import EndpointTable
from tui.requests import ClusterAction

JsonObject = dict[str, Any]

PATHS = ("/v1/clusters", "/v1/instances")


def cluster_name(row: JsonObject) -> str | None:
    for key in ("name", "cluster", "cluster_name", "id", "instance_id"):
        value = row.get(key)
        if value is not None and not isinstance(value, bool):
            return str(value)
    return None


class ClustersPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "act('stop')", "Stop"),
        Binding("d", "act('down')", "Down"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self, api: DaemonApi, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.api = api

    def compose(self) -> ComposeResult:
        yield EndpointTable(self.api, PATHS, title="clusters and instances", id="clusters-table")

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

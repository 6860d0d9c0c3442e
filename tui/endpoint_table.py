"""A table filled from one endpoint's JSON, whatever its exact shape, that says so plainly when
the daemon does not have the endpoint yet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.client import ApiError, DaemonApi, DaemonUnavailableError, EndpointMissingError, QueryValue
from tui.display import heading, json_cell
from tui.json_table import table_of

JsonObject = dict[str, Any]
Decorate = Callable[[list[JsonObject]], list[JsonObject]]
# Fetches the payload itself (e.g. from two endpoints); EndpointMissingError when it cannot.
Fetch = Callable[[DaemonApi, Mapping[str, QueryValue]], Awaitable[Any]]
Caption = Callable[[Any], str | None]


def not_available_text(paths: tuple[str, ...]) -> str:
    tried = " or ".join(f"GET {p}" for p in paths)
    return f"not available on this daemon yet ({tried}); upgrade skyd to see this"


class EndpointTable(Vertical):
    """Fetches on `reload()` only: screens call it when shown and when an event says the data
    changed, never on a timer."""

    def __init__(
        self,
        api: DaemonApi,
        paths: tuple[str, ...],
        *,
        title: str,
        query: Mapping[str, QueryValue] | None = None,
        hide: frozenset[str] = frozenset(),
        only: tuple[str, ...] = (),
        decorate: Decorate | None = None,
        fetch: Fetch | None = None,
        caption: Caption | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="endpoint")
        self.api = api
        self.paths = paths
        self.title = title
        self.query_params: dict[str, QueryValue] = dict(query or {})
        self.hide = hide
        self.only = only
        self.decorate = decorate
        self.fetch = fetch
        self.caption = caption
        self.rows: list[JsonObject] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(Text("loading…"), classes="endpoint-note")
        yield DataTable[Text](cursor_type="row", classes="endpoint-rows")

    def on_mount(self) -> None:
        self.border_title = self.title

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one(".endpoint-rows", DataTable)

    def _note(self, text: str, *, missing: bool = False, error: bool = False) -> None:
        note = self.query_one(".endpoint-note", Static)
        note.update(Text(text))
        note.display = bool(text)
        note.set_class(missing, "-missing")
        note.set_class(error, "-error")

    @work(exclusive=True, group="endpoint")
    async def reload(self) -> None:
        try:
            payload = await (self.fetch or self._first_path)(self.api, self.query_params)
        except EndpointMissingError:
            self.rows = []
            self.table.clear(columns=True)
            self.border_subtitle = ""
            self._note(not_available_text(self.paths), missing=True)
        except ApiError as exc:
            self._note(f"{self.paths[0]}: {exc.message}", error=True)
        except DaemonUnavailableError as exc:
            self._note(f"daemon unavailable: {exc.reason}", error=True)
        else:
            self.show_payload(payload)
        self.loaded = True

    async def _first_path(self, api: DaemonApi, query: Mapping[str, QueryValue]) -> Any:
        """The payload of the first of `paths` this daemon has."""
        for path in self.paths:
            try:
                return await api.optional(path, query)
            except EndpointMissingError:
                continue
        raise EndpointMissingError("not_found", "Not Found", 404)

    def show_payload(self, payload: Any) -> None:
        shape = table_of(payload, hide=self.hide)
        rows = list(shape.rows)
        if self.decorate is not None:
            rows = self.decorate(rows)
        columns: dict[str, None] = dict.fromkeys(shape.columns)
        for row in rows:
            for key in row:
                if key not in self.hide:
                    columns[key] = None
        # a known shape shows its useful columns in a useful order; an unknown one shows all
        chosen = [key for key in self.only if key in columns]
        if chosen:
            columns = dict.fromkeys(chosen)
        table = self.table
        cursor = table.cursor_row
        table.clear(columns=True)
        for key in columns:
            table.add_column(heading(key), key=key)
        for row in rows:
            table.add_row(*(Text(json_cell(key, row.get(key))) for key in columns))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)
        self.rows = rows
        self.border_subtitle = (self.caption(payload) or "") if self.caption else ""
        self._note("" if rows else "nothing to show")

    def selected(self) -> JsonObject | None:
        if not self.rows:
            return None
        index = self.table.cursor_row
        return self.rows[index] if 0 <= index < len(self.rows) else None

"""The Jobs tab: a live table of jobs with a filter line and a sort order; rows change in place
as events arrive, and only the rows in view are redrawn as the clock moves."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Label

from skyd.clock import Clock
from tui import job_rows
from tui.job_rows import COLUMNS, JobFilter
from tui.requests import CancelJob, IncludeFinishedToggled, OpenJob

JsonObject = dict[str, Any]

TICK_SECONDS = 1.0
RESORT_DELAY_SECONDS = 0.2


def resolve_colours(variables: dict[str, str]) -> dict[str, str]:
    """Rich styles for the theme variables the state column uses: a colour where the theme gives
    one, `dim` for the translucent "auto NN%" text variables (they have no fixed colour)."""
    wanted = set(job_rows.STATE_COLOUR_VARIABLE.values()) | {"text-error"}
    return {
        name: (value if value.startswith("#") else "dim")
        for name in wanted
        if (value := variables.get(name, ""))
    }


class JobsPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("a", "toggle_finished", "All/active"),
        Binding("c", "cancel_job", "Cancel job"),
        Binding("enter", "open_job", "Details", show=False),
    ]

    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.jobs: dict[int, JsonObject] = {}
        self.loaded_at = 0.0
        self.include_finished = False
        self.filter = JobFilter()
        self.sort_column = "id"
        self.sort_reverse = False
        self._row_cells: dict[int, dict[str, Text]] = {}
        self._colours: dict[str, str] = {}
        self._resort_pending = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="jobs-toolbar"):
            yield Input(placeholder="/ filter: words, state:running owner:ana…", id="job-filter")
            yield Label("", id="jobs-sort")
        table: DataTable[Text] = DataTable(id="jobs-table", cursor_type="row", cell_padding=0)
        for column in COLUMNS:
            table.add_column(job_rows.label(column), key=column.key, width=column.width)
        yield table

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#jobs-table", DataTable)

    def on_mount(self) -> None:
        self._colours = resolve_colours(self.app.get_css_variables())
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self._show_toolbar()
        self.set_interval(TICK_SECONDS, self.tick)

    def _theme_changed(self, _theme: object) -> None:
        self._colours = resolve_colours(self.app.get_css_variables())
        self.rebuild()

    # -- data in -------------------------------------------------------------------------

    def load(self, jobs: list[JsonObject], fetched_at: float, *, replace: bool) -> list[int]:
        """Take a fresh listing. Returns the jobs we showed that the listing no longer has and
        that were still live: they ended meanwhile, and need fetching to show how."""
        listed = {int(j["id"]): j for j in jobs}
        stale: list[int] = []
        if not replace:
            for job_id, job in self.jobs.items():
                if job_id not in listed:
                    listed[job_id] = job
                    if job.get("state") not in job_rows.TERMINAL:
                        stale.append(job_id)
        self.jobs = listed
        self.loaded_at = fetched_at
        self.rebuild()
        return stale

    def upsert(self, job: JsonObject) -> None:
        job_id = int(job["id"])
        known = self.jobs.get(job_id)
        # a fetch answered before a later event arrived must not roll the row back
        if known is not None and float(known.get("updated_at") or 0) > float(
            job.get("updated_at") or 0
        ):
            return
        self.jobs[job_id] = job
        self._sync_row(job_id)

    def apply_event(self, event: JsonObject) -> bool:
        """Show what the event says at once; True when the job should be fetched for the rest."""
        raw_id = event.get("job_id")
        if raw_id is None:
            return False
        job_id = int(raw_id)
        job = self.jobs.get(job_id)
        if job is None:
            # a job we never listed: new since the listing, or an old one we leave alone
            return float(event.get("at") or 0.0) >= self.loaded_at - 1.0
        changed = job_rows.apply_event(job, event)
        if changed is None:
            return False
        self.jobs[job_id] = changed
        self._sync_row(job_id)
        return True

    # -- the table -----------------------------------------------------------------------

    def rebuild(self) -> None:
        table = self.table
        cursor_job = self.cursor_job_id()
        now = self.clock.now()
        table.clear()
        self._row_cells.clear()
        key = job_rows.sort_key(self.sort_column, now)
        shown = sorted(
            (j for j in self.jobs.values() if self.filter.matches(j)),
            key=key,
            reverse=self.sort_reverse,
        )
        for job in shown:
            job_id = int(job["id"])
            cells = job_rows.cells(job, now, self._colours)
            self._row_cells[job_id] = cells
            table.add_row(*(cells[c.key] for c in COLUMNS), key=str(job_id))
        self._restore_cursor(cursor_job)
        self._show_toolbar()

    def _sync_row(self, job_id: int) -> None:
        table = self.table
        job = self.jobs[job_id]
        row_key = str(job_id)
        present = job_id in self._row_cells
        if not self.filter.matches(job):
            if present:
                table.remove_row(row_key)
                del self._row_cells[job_id]
                self._show_toolbar()
            return
        cells = job_rows.cells(job, self.clock.now(), self._colours)
        if not present:
            table.add_row(*(cells[c.key] for c in COLUMNS), key=row_key)
            self._row_cells[job_id] = cells
            self._schedule_resort()
            self._show_toolbar()
            return
        old = self._row_cells[job_id]
        for column_key, text in cells.items():
            before = old[column_key]
            if before.plain != text.plain or before.spans != text.spans:
                table.update_cell(row_key, column_key, text)
        self._row_cells[job_id] = cells

    def _schedule_resort(self) -> None:
        if not self._resort_pending:
            self._resort_pending = True
            self.set_timer(RESORT_DELAY_SECONDS, self._resort)

    def _resort(self) -> None:
        self._resort_pending = False
        cursor_job = self.cursor_job_id()
        job_key = job_rows.sort_key(self.sort_column, self.clock.now())
        jobs = self.jobs

        def row_order(id_cell: Text) -> Any:
            return job_key(jobs[int(id_cell.plain.strip())])

        self.table.sort("id", key=row_order, reverse=self.sort_reverse)
        self._restore_cursor(cursor_job)

    def _restore_cursor(self, job_id: int | None) -> None:
        table = self.table
        if job_id is not None and table.is_valid_row_index(0):
            try:
                index = table.get_row_index(str(job_id))
            except Exception:
                return
            table.move_cursor(row=index, animate=False, scroll=False)

    def tick(self) -> None:
        """Redraw the clock-driven cells of the rows in view (not of all 10,000)."""
        table = self.table
        top = int(table.scroll_offset.y)
        height = table.scrollable_content_region.height
        for row in table.ordered_rows[top : top + height + 1]:
            job_id = int(str(row.key.value))
            job = self.jobs.get(job_id)
            if job is not None and job_rows.needs_ticking(job):
                self._sync_row(job_id)

    def cursor_job_id(self) -> int | None:
        table = self.table
        if table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return int(str(row_key.value))

    def _show_toolbar(self) -> None:
        arrow = "↑" if self.sort_reverse else "↓"
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        shown = self.table.row_count if self.is_mounted else 0
        self.query_one("#jobs-sort", Label).update(
            f"{shown}/{len(self.jobs)} jobs · sort: {label.strip()} {arrow}"
        )

    # -- user input ----------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = JobFilter.parse(event.value)
        self.rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._show_toolbar()
        self.rebuild()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(OpenJob(int(str(event.row_key.value))))

    def action_focus_filter(self) -> None:
        self.query_one("#job-filter", Input).focus()

    def action_next_sort(self) -> None:
        keys = job_rows.COLUMN_KEYS
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_reverse = False
        self._show_toolbar()
        self.rebuild()

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._show_toolbar()
        self.rebuild()

    def action_toggle_finished(self) -> None:
        self.include_finished = not self.include_finished
        self.post_message(IncludeFinishedToggled(self.include_finished))

    def action_open_job(self) -> None:
        job_id = self.cursor_job_id()
        if job_id is not None:
            self.post_message(OpenJob(job_id))

    def action_cancel_job(self) -> None:
        job_id = self.cursor_job_id()
        if job_id is not None:
            self.post_message(CancelJob(self.jobs[job_id]))

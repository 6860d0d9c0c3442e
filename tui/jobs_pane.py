"""The Jobs tab: a live table of jobs with a filter line and a sort order; rows change in place
as events arrive, and only rows in view are ever drawn (or redrawn as the clock moves)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Click, Resize
from textual.message import Message
from textual.widgets import Input, Label, Static

from skyd.clock import Clock
from tui import job_rows
from tui.job_rows import COLUMNS, Column, JobFilter
from tui.job_table import JobTable, column_at, header_text
from tui.requests import CancelJob, IncludeFinishedToggled, OpenJob

JsonObject = dict[str, Any]

TICK_SECONDS = 1.0
# the vertical scrollbar's cells, so that the last column is never under it
SCROLLBAR_ROOM = 2
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


class JobsHeader(Static):
    """The column labels; a click on one sorts by it (again: the other way round)."""

    class SortBy(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    columns: tuple[Column, ...] = COLUMNS

    def on_click(self, event: Click) -> None:
        column = column_at(self.columns, event.x)
        if column is not None:
            self.post_message(self.SortBy(column))


class JobsPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("a", "toggle_finished", "All/active"),
        Binding("c", "cancel_job", "Cancel job"),
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
        self._colours: dict[str, str] = {}
        self._resort_pending = False
        self._natural = job_rows.natural_widths([])

    def compose(self) -> ComposeResult:
        with Horizontal(id="jobs-toolbar"):
            yield Input(placeholder="/ filter: words, state:running owner:ana…", id="job-filter")
            yield Label("", id="jobs-sort")
        yield JobsHeader(header_text(COLUMNS), id="jobs-header")
        yield JobTable(COLUMNS, self._cells_of, id="jobs-table")

    @property
    def table(self) -> JobTable:
        return self.query_one("#jobs-table", JobTable)

    def _cells_of(self, job_id: int) -> dict[str, Text]:
        return job_rows.cells(self.jobs[job_id], self.clock.now(), self._colours)

    def on_mount(self) -> None:
        self._colours = resolve_colours(self.app.get_css_variables())
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self._show_toolbar()
        self.set_interval(TICK_SECONDS, self.tick)

    def _theme_changed(self, _theme: object) -> None:
        self._colours = resolve_colours(self.app.get_css_variables())
        self.table.changed_all()

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
        self.fit_columns()
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
        self._fit_if_wider(job)
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

    def fit_columns(self, *, measure: bool = True) -> None:
        """Size the name, owner and placement columns to the jobs and the pane's width."""
        if measure:
            self._natural = job_rows.natural_widths(self.jobs.values())
        width = (self.size.width or self.app.size.width) - SCROLLBAR_ROOM
        columns = job_rows.fit_columns(self._natural, width)
        self.table.set_columns(columns)
        self.query_one("#jobs-header", JobsHeader).columns = columns
        self._show_toolbar()

    def _fit_if_wider(self, job: JsonObject) -> None:
        # one job's values against what the columns already allow for: cheap, and a refit
        # (of the widths only, not of every job) happens only when it needs more
        wider = job_rows.natural_widths([job], self._natural)
        if wider != self._natural:
            self._natural = wider
            self.fit_columns(measure=False)

    def on_resize(self, event: Resize) -> None:
        self.fit_columns(measure=False)

    def rebuild(self) -> None:
        """Filter and sort every job again (on a new listing, filter or sort order)."""
        key = job_rows.sort_key(self.sort_column, self.clock.now())
        jobs = self.jobs
        shown = sorted(
            (job_id for job_id, job in jobs.items() if self.filter.matches(job)),
            key=lambda job_id: key(jobs[job_id]),
            reverse=self.sort_reverse,
        )
        self.table.set_order(shown, keep_cursor_on=self.table.cursor_job_id)
        self._show_toolbar()

    def _sync_row(self, job_id: int) -> None:
        table = self.table
        present = job_id in table
        if not self.filter.matches(self.jobs[job_id]):
            if present:
                table.remove_job(job_id)
                self._show_toolbar()
            return
        if not present:
            table.append_job(job_id)
            self._schedule_resort()
            self._show_toolbar()
            return
        table.job_changed(job_id)
        if self.sort_column != "id":  # the change may move the row
            self._schedule_resort()

    def _schedule_resort(self) -> None:
        if not self._resort_pending:
            self._resort_pending = True
            self.set_timer(RESORT_DELAY_SECONDS, self._resort)

    def _resort(self) -> None:
        self._resort_pending = False
        key = job_rows.sort_key(self.sort_column, self.clock.now())
        jobs = self.jobs
        order = sorted(
            self.table.order, key=lambda job_id: key(jobs[job_id]), reverse=self.sort_reverse
        )
        if order != self.table.order:
            self.table.set_order(order, keep_cursor_on=self.table.cursor_job_id)

    def tick(self) -> None:
        """Redraw the clock-driven cells of the rows in view (not of all 10,000)."""
        for job_id in self.table.visible_job_ids():
            if job_rows.needs_ticking(self.jobs[job_id]):
                self.table.job_changed(job_id)

    def cursor_job_id(self) -> int | None:
        return self.table.cursor_job_id

    def _show_toolbar(self) -> None:
        arrow = "↑" if self.sort_reverse else "↓"
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        self.query_one("#jobs-header", JobsHeader).update(
            header_text(self.table.columns, self.sort_column, arrow)
        )
        shown = self.table.row_count
        self.query_one("#jobs-sort", Label).update(
            f"{shown}/{len(self.jobs)} jobs · sort: {label.strip()} {arrow}"
        )

    # -- user input ----------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = JobFilter.parse(event.value)
        self.rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def on_jobs_header_sort_by(self, event: JobsHeader.SortBy) -> None:
        if event.column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = event.column, False
        self.rebuild()

    def on_job_table_chosen(self, event: JobTable.Chosen) -> None:
        event.stop()
        self.post_message(OpenJob(event.job_id))

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

    def action_cancel_job(self) -> None:
        job_id = self.cursor_job_id()
        if job_id is not None:
            self.post_message(CancelJob(self.jobs[job_id]))

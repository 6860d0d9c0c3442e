"""One job up close: its fields, its event timeline (growing live) and a live tail of its log."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, Static

from skyctl.attempts import job_attempts, total_run_seconds
from skyctl.job_view import data_out_text, state_text
from skyd.clock import Clock
from tui import job_rows
from tui.client import ApiError, DaemonApi, DaemonUnavailableError
from tui.display import clock_time, dollars, duration
from tui.requests import CancelJob

JsonObject = dict[str, Any]

LOG_LINES_KEPT = 5_000
LOG_RETRY_SECONDS = 1.0
# Wider than the screen: long reasons scroll sideways rather than being cut to a few letters.
REASON_WIDTH = 120


def runtime_text(job: JsonObject, now: float) -> str:
    """The run time of every attempt together (a recovered spot job ran several times)."""
    attempts = job_attempts(job, now)
    if len(attempts) > 1:
        return f"{duration(total_run_seconds(attempts))} over {len(attempts)} attempts"
    return duration(job_rows.runtime_seconds(job, now))


def summary_text(job: JsonObject, now: float) -> Text:
    placement = job.get("placement") or {}
    cost, estimated = job_rows.cost_so_far(job, now)
    lines = [
        f"job {job.get('id')} · {job.get('name')} · {state_text(job)}"
        f" · owner {job.get('owner')}"
        + (f" · project {job['project']}" if job.get("project") else ""),
        f"placement {job_rows.placement_text(job)} {job_rows.market_text(job)}"
        + (f" @ {dollars(placement.get('hourly_price'))}/h" if placement else ""),
        f"runtime {runtime_text(job, now)} · cost "
        f"{dollars(cost, estimated=estimated)} · slack {duration(job_rows.slack_seconds(job, now))}"
        f" · preemptions {job.get('preemptions', 0)} · restarts {job.get('restarts', 0)}",
        f"why: {placement.get('why') or job.get('reason') or '-'}",
    ]
    data_out = data_out_text(job, None)
    if data_out:
        lines.insert(3, f"data out {data_out}")  # egress charged: checkpoints, logs, buckets
    return Text("\n".join(lines))


class JobDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("c", "cancel", "Cancel job"),
        Binding("e", "focus_events", "Timeline", show=False),
        Binding("l", "focus_log", "Log", show=False),
    ]

    def __init__(self, api: DaemonApi, job_id: int, clock: Clock) -> None:
        super().__init__()
        self.api = api
        self.job_id = job_id
        self.clock = clock
        self.job: JsonObject | None = None
        self._seen_seqs: set[int] = set()

    def compose(self) -> ComposeResult:
        with Vertical(id="job-detail"):
            yield Static(Text(f"job {self.job_id}: loading…"), id="job-summary")
            timeline: DataTable[Text] = DataTable(id="job-timeline", cursor_type="row")
            timeline.add_column("time", key="at", width=8)
            timeline.add_column("event", key="kind", width=14)
            timeline.add_column("state", key="state", width=12)
            timeline.add_column("reason", key="reason", width=REASON_WIDTH)
            yield timeline
            yield Log(id="job-log", max_lines=LOG_LINES_KEPT, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#job-timeline").border_title = "events"
        self.query_one("#job-log").border_title = "log"
        self.load_job()
        self.follow_log()

    @work(exclusive=True, group="job-detail")
    async def load_job(self) -> None:
        try:
            job = await self.api.job(self.job_id)
        except (ApiError, DaemonUnavailableError) as exc:
            self.query_one("#job-summary", Static).update(Text(f"job {self.job_id}: {exc}"))
            return
        self.show_job(job)
        for event in job.get("events") or []:
            self._add_timeline_row(event)

    @work(group="job-log")
    async def follow_log(self) -> None:
        """Tail the log until the job ends; across a daemon restart, go on where it broke."""
        log = self.query_one("#job-log", Log)
        offset = 0
        while True:
            try:
                async for chunk in self.api.log_chunks(self.job_id, offset=offset):
                    log.write(chunk.text)
                    offset = chunk.offset
                return
            except ApiError as exc:
                log.write_line(f"[log unavailable: {exc.message}]")
                return
            except DaemonUnavailableError as exc:
                log.write_line(f"[log stream broke: {exc.reason}; resuming when skyd is back]")
            await self._daemon_back()

    async def _daemon_back(self) -> None:
        while True:
            try:
                await self.api.health()
                return
            except (ApiError, DaemonUnavailableError):
                await asyncio.sleep(LOG_RETRY_SECONDS)  # wall time: waiting on a real daemon

    def show_job(self, job: JsonObject) -> None:
        self.job = job
        self.query_one("#job-summary", Static).update(summary_text(job, self.clock.now()))

    def add_event(self, event: JsonObject) -> None:
        """An event from the live stream that concerns this job."""
        self._add_timeline_row(event)
        if self.job is not None:
            changed = job_rows.apply_event(self.job, event)
            if changed is not None:
                self.show_job(changed)

    def _add_timeline_row(self, event: JsonObject) -> None:
        seq = event.get("seq")
        if isinstance(seq, int):
            if seq in self._seen_seqs:
                return
            self._seen_seqs.add(seq)
        timeline = self.query_one("#job-timeline", DataTable)
        now = self.clock.now()
        timeline.add_row(
            Text(clock_time(event.get("at"), now=now)),
            Text(str(event.get("kind", ""))),
            Text(str(event.get("state") or "")),
            Text(str(event.get("reason") or "")),
        )
        timeline.move_cursor(row=timeline.row_count - 1, animate=False)

    def action_cancel(self) -> None:
        if self.job is not None:
            self.app.post_message(CancelJob(self.job))

    def action_focus_events(self) -> None:
        self.query_one("#job-timeline").focus()

    def action_focus_log(self) -> None:
        self.query_one("#job-log").focus()

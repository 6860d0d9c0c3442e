"""The dashboard application: tabs for jobs, clusters, market, spend and events, fed by the
daemon's event stream; `run_dashboard` is what `skyctl dashboard` and `python -m tui` call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, HelpPanel, Static, TabbedContent, TabPane

from skyd.clock import Clock, SystemClock
from tui.client import ApiError, DaemonApi, DaemonUnavailableError, EndpointMissingError
from tui.clusters_pane import ClustersPane
from tui.confirm import ConfirmScreen
from tui.endpoint_table import EndpointTable
from tui.events_pane import EventsPane
from tui.job_detail import JobDetailScreen
from tui.job_refresh import JobRefresher
from tui.jobs_pane import JobsPane
from tui.live_feed import Connected, ConnectionStatus, LiveFeed
from tui.market_pane import MarketPane
from tui.requests import CancelJob, ClusterAction, IncludeFinishedToggled, OpenJob
from tui.spend_pane import SpendPane
from tui.status_bar import StatusBar

JsonObject = dict[str, Any]

TABS = ("jobs", "clusters", "market", "spend", "events")
# What gets focus when a tab is shown: the first of these in it.
MAIN_WIDGETS = "JobTable, DataTable, RichLog"
EVENTS_HEADER = f"{'time':<8} {'job':<5} {'event':<12} {'state':<13} why"  # as event_line


def screenshot_folder(preferred: Path | None = None) -> Path:
    """The current directory if it can be written, else $XDG_STATE_HOME/skyd (made if need be)."""
    folder = preferred or Path.cwd()
    if os.access(folder, os.W_OK):
        return folder
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "skyd"
    state.mkdir(parents=True, exist_ok=True)
    return state


# The clusters, market and spend tabs refetch at most this often while events flow.
SIDE_TABLE_RELOAD_SECONDS = 2.0


class SkydDashboard(App[int]):
    # absolute, so that subclasses defined elsewhere (tests, benchmarks) find it too
    CSS_PATH = Path(__file__).with_name("dashboard.tcss")
    TITLE = "skyd"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "toggle_keys", "Keys"),
        *(
            Binding(str(i), f"show_tab('{tab}')", tab.title(), show=False)
            for i, tab in enumerate(TABS, start=1)
        ),
    ]

    def __init__(
        self,
        socket_path: str,
        *,
        clock: Clock | None = None,
        screenshot_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.screenshot_dir = screenshot_dir
        self.clock: Clock = clock or SystemClock()
        self.api = DaemonApi(socket_path)
        self.feed = LiveFeed(self.api, self, self.clock)
        self.refresher = JobRefresher(self.api, self._job_fetched)
        self.status: ConnectionStatus | None = None
        self._pending_reloads: set[str] = set()

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="jobs", id="tabs"):
            with TabPane("1 Jobs", id="jobs"):
                yield JobsPane(self.clock, id="jobs-pane")
            with TabPane("2 Clusters", id="clusters"):
                yield ClustersPane(self.api, self.clock.now, id="clusters-pane")
            with TabPane("3 Market", id="market"):
                yield MarketPane(self.api, id="market-pane")
            with TabPane("4 Spend", id="spend"):
                yield SpendPane(self.api, self.clock.now, id="spend-pane")
            with TabPane("5 Events", id="events"):
                yield Static(EVENTS_HEADER, id="events-header", classes="pane-header")
                yield EventsPane(id="events-pane")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def main_screen(self) -> Screen[Any]:
        """The screen holding the tabs, even while a job's details or a dialog is on top."""
        return self.screen_stack[0]

    @property
    def jobs_pane(self) -> JobsPane:
        return self.main_screen.query_one("#jobs-pane", JobsPane)

    def on_mount(self) -> None:
        self.query_one("#jobs-table").focus()
        self.follow_daemon()
        self.refresh_jobs()

    async def on_unmount(self) -> None:
        await self.api.aclose()

    @work(exclusive=True, group="feed")
    async def follow_daemon(self) -> None:
        await self.feed.run()

    @work(exclusive=True, group="refresh")
    async def refresh_jobs(self) -> None:
        await self.refresher.run()

    # -- FeedListener ----------------------------------------------------------------------

    # The feed may deliver while the app is shutting down and its widgets are going away;
    # from then on there is nothing to show it on.

    def connection_changed(self, status: ConnectionStatus) -> None:
        self.status = status
        if not self.is_running:
            return
        self.main_screen.query_one("#status", StatusBar).show(status)
        if isinstance(status, Connected) and status.reconnected:
            self._schedule_reload("#clusters-pane", "#market-pane", "#spend-pane")

    def jobs_loaded(self, jobs: list[JsonObject], fetched_at: float) -> None:
        if not self.is_running:
            return
        for job_id in self.jobs_pane.load(jobs, fetched_at, replace=False):
            self.refresher.request(job_id)

    def event_received(self, event: JsonObject) -> None:
        if not self.is_running:
            return
        if self.jobs_pane.apply_event(event):
            self.refresher.request(int(event["job_id"]))
        self.main_screen.query_one("#events-pane", EventsPane).add(event, self.clock.now())
        screen = self.screen
        if isinstance(screen, JobDetailScreen) and screen.job_id == event.get("job_id"):
            screen.add_event(event)
        market = self.main_screen.query_one("#market-pane", MarketPane)
        if market.market_event(event):
            self._schedule_reload("#market-pane")
        elif event.get("state") or event.get("job_id") is None:
            # machines and money change when jobs, clusters and pools do
            self._schedule_reload("#clusters-pane", "#spend-pane")

    def _job_fetched(self, job: JsonObject) -> None:
        if not self.is_running:
            return
        self.jobs_pane.upsert(job)
        screen = self.screen
        if isinstance(screen, JobDetailScreen) and screen.job_id == job.get("id"):
            screen.show_job(job)

    # -- side tables (clusters, spend) -----------------------------------------------------

    def _schedule_reload(self, *pane_ids: str) -> None:
        """Refetch those panes' tables (the ones ever shown) once, a little later: a burst of
        events costs one request per table, not one per event."""
        if not self._pending_reloads:
            self.set_timer(SIDE_TABLE_RELOAD_SECONDS, self._reload_pending)
        self._pending_reloads.update(pane_ids)

    def _reload_pending(self) -> None:
        pane_ids, self._pending_reloads = self._pending_reloads, set()
        if not self.is_running:
            return
        for pane_id in sorted(pane_ids):
            for table in self.main_screen.query_one(pane_id).query(EndpointTable):
                if table.loaded:
                    table.reload()

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        # the tab's own key bindings (and footer) apply only while focus is inside it: focus
        # its main widget, or the keys of the tab left behind would be the ones that work
        focusable = [w for w in event.pane.query(MAIN_WIDGETS) if w.focusable]
        if focusable:
            focusable[0].focus()
        for table in event.pane.query(EndpointTable):
            if not table.loaded:
                table.reload()
        for log in event.pane.query(EventsPane):
            # lines written while the tab was hidden are laid out only now: follow the newest
            self.call_after_refresh(log.scroll_end, animate=False)

    def action_show_tab(self, tab: str) -> None:
        tabs = self.main_screen.query_one("#tabs", TabbedContent)
        if tabs.active == tab:
            # no TabActivated comes for the tab already shown; focus may still be elsewhere
            focusable = [w for w in tabs.get_pane(tab).query(MAIN_WIDGETS) if w.focusable]
            if focusable:
                focusable[0].focus()
        tabs.active = tab

    def action_toggle_keys(self) -> None:
        """`?`: the keys of whatever has focus (and of the app), beside it; again to hide."""
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """Screenshots go to the current directory (or the user's state directory when that
        cannot be written), never to a Downloads folder that a server may not have."""
        folder = Path(path) if path else screenshot_folder(self.screenshot_dir)
        saved = self.save_screenshot(filename, str(folder), time_format)
        self.notify(f"Saved screenshot to {saved}", title="Screenshot")
        return saved

    # -- requests from panes ---------------------------------------------------------------

    def on_open_job(self, message: OpenJob) -> None:
        self.push_screen(JobDetailScreen(self.api, message.job_id, self.clock))

    def on_cancel_job(self, message: CancelJob) -> None:
        job = message.job
        job_id = int(job["id"])
        if job.get("state") in {"SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"}:
            self.notify(f"job {job_id} has already ended ({job.get('state')})", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_job(job_id)

        self.push_screen(ConfirmScreen(f"Cancel job {job_id} ({job.get('name')})?"), answered)

    @work(group="actions")
    async def cancel_job(self, job_id: int) -> None:
        try:
            job = await self.api.cancel(job_id)
        except ApiError as exc:
            self.notify(f"cannot cancel job {job_id}: {exc.message}", severity="error")
            return
        except DaemonUnavailableError as exc:
            self.notify(f"cannot cancel job {job_id}: {exc.reason}", severity="error")
            return
        self._job_fetched(job)
        # the daemon stops it in the background; its row reads CANCELLING until it ends
        self.notify(f"job {job_id}: cancel under way")

    def on_include_finished_toggled(self, message: IncludeFinishedToggled) -> None:
        self.feed.include_finished = message.include
        self.reload_job_list(message.include)

    @work(exclusive=True, group="job-list")
    async def reload_job_list(self, include_finished: bool) -> None:
        fetched_at = self.clock.now()
        try:
            jobs = await self.api.list_jobs(include_finished=include_finished)
        except (ApiError, DaemonUnavailableError) as exc:
            self.notify(f"cannot list jobs: {exc}", severity="error")
            return
        self.jobs_pane.load(jobs, fetched_at, replace=True)
        which = "all jobs" if include_finished else "active jobs"
        self.notify(f"showing {which} ({len(jobs)})")

    def on_cluster_action(self, message: ClusterAction) -> None:
        verb = {"stop": "Stop", "down": "Tear down"}.get(message.action, message.action)

        def answered(yes: bool | None) -> None:
            if yes:
                self.cluster_action(message.action, message.cluster)

        self.push_screen(ConfirmScreen(f"{verb} cluster {message.cluster}?"), answered)

    @work(group="actions")
    async def cluster_action(self, action: str, cluster: str) -> None:
        path = f"/v1/clusters/{cluster}/{action}"
        try:
            await self.api.optional(path, method="POST")
        except EndpointMissingError:
            self.notify(f"{action}: not available on this daemon yet", severity="warning")
            return
        except (ApiError, DaemonUnavailableError) as exc:
            self.notify(f"cannot {action} {cluster}: {exc}", severity="error")
            return
        self.notify(f"{cluster}: {action} requested")
        self.main_screen.query_one("#clusters-pane", ClustersPane).action_reload()


def run_dashboard(socket_path: str) -> int:
    """Run the dashboard in this terminal until the user quits; the exit status."""
    result = SkydDashboard(socket_path).run()
    return 0 if result is None else result

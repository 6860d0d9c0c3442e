"""Snapshot of every screen at 80x24, and of every tab at 200x50 too (pytest-textual-snapshot),
against the fake daemon's fixed data and a frozen clock, so a change in what the screens show
fails here until reviewed (`pytest tests/tui --snapshot-update` rewrites them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Log

from skyd.clock import VirtualClock
from skyd.testing.canned_daemon import FakeDaemon, FakeDaemonThread
from tests.tui.tui_harness import NOW, settle
from tui.app import SkydDashboard
from tui.endpoint_table import EndpointTable
from tui.events_pane import EventsPane
from tui.job_detail import JobDetailScreen
from tui.live_feed import Connected
from tui.market_pane import MarketPane

SIZE = (80, 24)
WIDE = (200, 50)
SnapCompare = Callable[..., bool]
Steps = Callable[[Pilot[Any]], Awaitable[None]]


def dashboard(fake: FakeDaemonThread) -> SkydDashboard:
    return SkydDashboard(fake.socket_path, clock=VirtualClock(NOW))


async def jobs_listed(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, SkydDashboard)
    await settle(pilot, lambda: app.jobs_pane.table.row_count == 3)
    events = app.main_screen.query_one("#events-pane", EventsPane)
    await settle(pilot, lambda: events.received == 6)


async def connected(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, SkydDashboard)
    await settle(pilot, lambda: isinstance(app.status, Connected))


def on_tab(key: str, pane_id: str, *, first: Steps = jobs_listed) -> Steps:
    async def steps(pilot: Pilot[Any]) -> None:
        await first(pilot)
        await pilot.press(key)
        app = pilot.app
        assert isinstance(app, SkydDashboard)
        pane = app.main_screen.query_one(pane_id)
        await settle(pilot, lambda: all(t.loaded for t in pane.query(EndpointTable)))
        await pilot.pause()

    return steps


async def market_with_history(pilot: Pilot[Any]) -> None:
    await on_tab("3", "#market-pane")(pilot)
    app = pilot.app
    assert isinstance(app, SkydDashboard)
    market = app.main_screen.query_one("#market-pane", MarketPane)
    await settle(pilot, lambda: "prices" in str(market.query_one("#market-history-label").render()))


async def job_detail(pilot: Pilot[Any]) -> None:
    await jobs_listed(pilot)
    await pilot.press("ctrl+end")  # job 1, the oldest, is the last row
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, JobDetailScreen) and screen.job_id == 1
    log = screen.query_one("#job-log", Log)
    timeline = screen.query_one("#job-timeline", DataTable)
    await settle(pilot, lambda: len(log.lines) >= 2 and timeline.row_count == 3)


async def jobs_on_a_light_terminal(pilot: Pilot[Any]) -> None:
    pilot.app.theme = "textual-light"
    await jobs_listed(pilot)
    await pilot.pause()


async def cancel_dialog(pilot: Pilot[Any]) -> None:
    await jobs_listed(pilot)
    await pilot.press("c")
    await pilot.pause()


async def keys_shown(pilot: Pilot[Any]) -> None:
    await jobs_listed(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


TABS = [
    pytest.param(jobs_listed, id="jobs"),
    pytest.param(on_tab("2", "#clusters-pane"), id="clusters"),
    pytest.param(market_with_history, id="market"),
    pytest.param(on_tab("4", "#spend-pane"), id="spend"),
    pytest.param(on_tab("5", "#events-pane"), id="events"),
]


@pytest.mark.parametrize(
    "steps",
    [
        *TABS,
        pytest.param(jobs_on_a_light_terminal, id="jobs-light"),
        pytest.param(job_detail, id="job-detail"),
        pytest.param(cancel_dialog, id="cancel-dialog"),
        pytest.param(keys_shown, id="keys"),
    ],
)
def test_screen(
    steps: Steps, fake_daemon: FakeDaemonThread, utc: None, snap_compare: SnapCompare
) -> None:
    assert snap_compare(dashboard(fake_daemon), terminal_size=SIZE, run_before=steps)


@pytest.mark.parametrize("steps", TABS)
def test_tab_on_a_wide_terminal(
    steps: Steps, fake_daemon: FakeDaemonThread, utc: None, snap_compare: SnapCompare
) -> None:
    """Columns widen with the terminal: nothing is cut while there is room."""
    assert snap_compare(dashboard(fake_daemon), terminal_size=WIDE, run_before=steps)


def test_tabs_of_an_older_daemon_say_what_is_missing(
    tmp_path: Path, utc: None, snap_compare: SnapCompare
) -> None:
    bare = FakeDaemonThread(FakeDaemon(), tmp_path / "bare.sock").start()
    try:
        assert snap_compare(
            dashboard(bare),
            terminal_size=SIZE,
            run_before=on_tab("4", "#spend-pane", first=connected),
        )
    finally:
        bare.stop()

"""Every key binding of the dashboard, pressed through Textual's Pilot against the fake daemon:
what it changes on screen, where focus goes, and what reaches the daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, HelpPanel, Input, Log, TabbedContent

from skyd.clock import VirtualClock
from skyd.testing.canned_daemon import FakeDaemonThread
from tests.tui.tui_harness import NOW, T0, settle
from tui.app import MAIN_WIDGETS, SkydDashboard
from tui.confirm import ConfirmScreen
from tui.endpoint_table import EndpointTable
from tui.events_pane import EventsPane
from tui.job_detail import JobDetailScreen
from tui.job_table import JobTable
from tui.spend_pane import SpendPane

Running = tuple[SkydDashboard, Pilot[Any]]


@pytest.fixture
async def running(fake_daemon: FakeDaemonThread) -> AsyncIterator[Running]:
    app = SkydDashboard(fake_daemon.socket_path, clock=VirtualClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.jobs_pane.table.row_count == 3)
        yield app, pilot


def _visible_main_widget(app: SkydDashboard) -> Any:
    tabs = app.main_screen.query_one("#tabs", TabbedContent)
    pane = tabs.get_pane(tabs.active)
    return next(w for w in pane.query(MAIN_WIDGETS) if w.focusable)


async def test_number_keys_switch_tabs_and_focus_the_tab_s_main_widget(running: Running) -> None:
    app, pilot = running
    tabs = app.main_screen.query_one("#tabs", TabbedContent)
    # typed: the list's inferred item type would be Textual's metaclass, not a widget class
    cases: list[tuple[str, str, type[Widget]]] = [
        ("2", "clusters", DataTable),
        ("3", "market", DataTable),
        ("4", "spend", DataTable),
        ("5", "events", EventsPane),
        ("1", "jobs", JobTable),
        ("3", "market", DataTable),
        ("1", "jobs", JobTable),  # the case: 3 then 1 left nothing focused
    ]
    for key, tab, widget in cases:
        await pilot.press(key)
        await pilot.pause()
        assert tabs.active == tab
        assert isinstance(app.focused, widget) and app.focused is _visible_main_widget(app)
    # the jobs keys work straight away, without a Tab first
    await pilot.press("s")
    assert app.jobs_pane.sort_column == "name"
    # the tab already shown takes focus back from the filter line
    await pilot.press("slash")
    assert isinstance(app.focused, Input)
    await pilot.press("escape")
    app.set_focus(None)
    await pilot.press("1")
    assert isinstance(app.focused, JobTable)


async def test_question_mark_shows_the_keys_and_hides_them_again(running: Running) -> None:
    app, pilot = running
    await pilot.press("question_mark")
    await pilot.pause()
    panel = app.screen.query_one(HelpPanel)
    assert panel.display
    await pilot.press("question_mark")
    await pilot.pause()
    assert not app.screen.query(HelpPanel)


async def test_q_quits(running: Running) -> None:
    app, pilot = running
    await pilot.press("q")
    await pilot.pause()
    assert not app.is_running


async def test_table_keys_move_the_cursor_and_enter_opens_the_job(running: Running) -> None:
    app, pilot = running
    table = app.jobs_pane.table
    assert table.cursor_job_id == 3
    for key, on_job in (
        ("down", 2),
        ("up", 3),
        ("end", 1),
        ("home", 3),
        ("pagedown", 1),
        ("pageup", 3),
        ("ctrl+end", 1),
        ("ctrl+home", 3),
    ):
        await pilot.press(key)
        assert table.cursor_job_id == on_job, key
    await pilot.press("enter")
    assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == 3


async def test_jobs_keys_filter_sort_reverse_all_and_cancel(
    running: Running, fake_daemon: FakeDaemonThread
) -> None:
    app, pilot = running
    pane = app.jobs_pane
    await pilot.press("slash")
    assert isinstance(app.focused, Input)
    await pilot.press("enter")
    assert isinstance(app.focused, JobTable)
    await pilot.press("s")
    assert (pane.sort_column, pane.sort_reverse) == ("name", False)
    await pilot.press("r")
    assert pane.sort_reverse
    await pilot.press("a")
    await settle(pilot, lambda: pane.table.row_count == 4)  # the finished job too
    await pilot.press("a")
    await settle(pilot, lambda: pane.table.row_count == 3)
    await pilot.press("home", "c")
    # narrow a local, not app.screen: mypy would keep that narrowing across the presses below
    asking = app.screen
    assert isinstance(asking, ConfirmScreen)
    job_id = pane.table.cursor_job_id
    assert job_id is not None
    await pilot.press("n")
    assert not isinstance(app.screen, ConfirmScreen)
    assert fake_daemon.fake.state.jobs[job_id]["state"] != "CANCELLED"
    await pilot.press("c")
    await pilot.press("escape")  # no, too
    assert not isinstance(app.screen, ConfirmScreen)
    await pilot.press("c", "y")
    await settle(pilot, lambda: fake_daemon.fake.state.jobs[job_id]["state"] == "CANCELLED")


async def test_cancel_returns_at_once_and_the_row_reads_cancelling_until_the_job_ends(
    running: Running, fake_daemon: FakeDaemonThread
) -> None:
    app, pilot = running
    fake = fake_daemon.fake
    fake.state.finish_cancels = False  # the daemon's kill goes on until the test ends it
    table = app.jobs_pane.table
    await pilot.press("home")
    job_id = table.cursor_job_id
    assert job_id is not None
    await pilot.press("c", "y")
    await settle(pilot, lambda: table.cell_text(job_id, "state") == "CANCELLING")
    assert fake.state.cancel_waits == [False]  # asked to answer at once
    assert fake.state.jobs[job_id]["state"] != "CANCELLED"
    fake_daemon.call(fake.finish_cancel, job_id)
    await settle(pilot, lambda: table.cell_text(job_id, "state") == "CANCELLED")


async def test_job_detail_keys(running: Running, fake_daemon: FakeDaemonThread) -> None:
    app, pilot = running
    await pilot.press("end", "enter")  # job 1 has a log
    screen = app.screen
    assert isinstance(screen, JobDetailScreen) and screen.job_id == 1
    log = screen.query_one("#job-log", Log)
    await settle(pilot, lambda: len(log.lines) >= 2)
    await pilot.press("l")
    focused = app.focused  # a local, so app.focused is not narrowed to Log for the next check
    assert focused is log
    await pilot.press("e")
    assert app.focused is screen.query_one("#job-timeline", DataTable)
    await pilot.press("escape")
    assert app.screen is app.main_screen
    await pilot.press("enter")
    assert isinstance(app.screen, JobDetailScreen)
    await pilot.press("q")  # back, not quit
    assert app.screen is app.main_screen and app.is_running
    await pilot.press("enter", "c", "y")
    await settle(pilot, lambda: fake_daemon.fake.state.jobs[1]["state"] == "CANCELLED")


async def test_clusters_keys_stop_down_and_refresh(
    running: Running, fake_daemon: FakeDaemonThread
) -> None:
    app, pilot = running
    await pilot.press("2")
    clusters = app.main_screen.query_one("#clusters-table", EndpointTable)
    await settle(pilot, lambda: clusters.loaded and len(clusters.rows) == 3)
    await pilot.press("t", "y")
    await settle(pilot, lambda: ("stop", "dev-a100") in fake_daemon.fake.state.cluster_actions)
    await pilot.press("down", "d", "y")
    await settle(pilot, lambda: ("down", "sweeps") in fake_daemon.fake.state.cluster_actions)
    payload = fake_daemon.fake.state.extras["/v1/clusters"]
    payload["clusters"] = payload["clusters"][:1]
    await pilot.press("r")
    await settle(pilot, lambda: len(clusters.rows) == 1)


async def test_market_r_refreshes_the_offers(
    running: Running, fake_daemon: FakeDaemonThread
) -> None:
    app, pilot = running
    await pilot.press("3")
    offers = app.main_screen.query_one("#market-offers", EndpointTable)
    await settle(pilot, lambda: offers.loaded and len(offers.rows) == 3)
    extras = fake_daemon.fake.state.extras
    extras["/v1/prices"] = extras["/v1/prices"][:1]
    extras["/v1/prices?spot=1"] = []
    await pilot.press("r")
    await settle(pilot, lambda: len(offers.rows) == 1)


async def test_spend_b_changes_the_grouping_and_r_refreshes(
    running: Running, fake_daemon: FakeDaemonThread
) -> None:
    app, pilot = running
    extras = fake_daemon.fake.state.extras
    extras["/v1/costs?by=project"] = {
        "by": "project",
        "rows": [{"key": "vision", "name": "vision", "amount": 9.0}],
        "total": 9.0,
    }
    await pilot.press("4")
    spend = app.main_screen.query_one("#spend-pane", SpendPane)
    costs = spend.query_one("#spend-costs", EndpointTable)
    await settle(pilot, lambda: costs.loaded and len(costs.rows) == 2)
    await pilot.press("b")
    assert spend.grouping == "project"
    await settle(pilot, lambda: [r.get("name") for r in costs.rows] == ["vision"])
    extras["/v1/costs?by=project"]["rows"].append({"key": "nlp", "name": "nlp", "amount": 1.0})
    await pilot.press("r")
    await settle(pilot, lambda: len(costs.rows) == 2)


async def test_events_m_hides_and_shows_market_changes(
    running: Running, fake_daemon: FakeDaemonThread
) -> None:
    app, pilot = running
    events = app.main_screen.query_one("#events-pane", EventsPane)
    fake_daemon.call(fake_daemon.fake.publish, None, "market", at=T0 + 3000, reason="spot moved")
    await settle(pilot, lambda: events.received == 7)
    await pilot.press("5", "m")
    # compared as tuples, which mypy does not narrow: the flag flips on the next press
    assert (events.show_market, len(events.lines)) == (False, 6)
    await pilot.press("m")
    assert (events.show_market, len(events.lines)) == (True, 7)


async def test_the_palette_screenshot_lands_in_the_current_directory(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _app, pilot = running
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))  # no ~/Downloads to fall back on
    await pilot.press("ctrl+p")
    await pilot.press(*"screenshot")
    await pilot.press("enter")
    await settle(pilot, lambda: list(tmp_path.glob("*.svg")))
    (saved,) = tmp_path.glob("*.svg")
    assert saved.read_text().startswith("<svg")

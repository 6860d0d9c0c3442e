"""The tabs driven by keys against the fake daemon: filter and sort the jobs, stop a cluster
after confirming, and the rows of the market, clusters and spend tabs."""

from __future__ import annotations

from textual.widgets import Input

from skyd.clock import VirtualClock
from skyd.testing.canned_daemon import FakeDaemonThread
from tests.tui.tui_harness import NOW, T0, settle
from tui.app import SkydDashboard
from tui.clusters_pane import cluster_rows
from tui.confirm import ConfirmScreen
from tui.endpoint_table import EndpointTable
from tui.events_pane import EventsPane
from tui.market_pane import history_summary
from tui.market_rows import availability_change, merge_offers
from tui.spend_pane import costs_caption, credits_caption


async def test_typing_a_filter_narrows_the_rows_and_s_changes_the_order(
    fake_daemon: FakeDaemonThread,
) -> None:
    app = SkydDashboard(fake_daemon.socket_path, clock=VirtualClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.jobs_pane.table
        await settle(pilot, lambda: table.row_count == 3)
        assert table.order == [3, 2, 1]  # newest first

        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"owner:bo")
        assert table.order == [2]
        for _ in range(len("owner:bo")):
            await pilot.press("backspace")
        await pilot.press(*"state:run")
        assert table.order == [1]
        await pilot.press("ctrl+a", "ctrl+k", "enter")  # clear, back to the table
        assert table.order == [3, 2, 1] and table.has_focus

        await pilot.press("s")  # id → name
        assert [app.jobs_pane.jobs[j]["name"] for j in table.order] == [
            "eval[big]",
            "sweep-7",
            "train-resnet",
        ]
        await pilot.press("r")
        assert table.order[0] == 1


async def test_clicking_a_column_label_sorts_by_it_and_again_reverses(
    fake_daemon: FakeDaemonThread,
) -> None:
    app = SkydDashboard(fake_daemon.socket_path, clock=VirtualClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.jobs_pane.table
        await settle(pilot, lambda: table.row_count == 3)
        slack_x = sum(c.width for c in table.columns[:-1]) + 3
        await pilot.click("#jobs-header", offset=(slack_x, 0))
        assert app.jobs_pane.sort_column == "slack"
        assert table.order == [3, 1, 2]  # the late one first, no deadline last
        await pilot.click("#jobs-header", offset=(slack_x, 0))
        assert app.jobs_pane.sort_reverse and table.order == [2, 1, 3]
        header = str(app.main_screen.query_one("#jobs-header").render())
        assert "slack↑" in header


async def test_stopping_a_cluster_asks_first_and_then_tells_the_daemon(
    fake_daemon: FakeDaemonThread,
) -> None:
    app = SkydDashboard(fake_daemon.socket_path, clock=VirtualClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.jobs_pane.table.row_count == 3)
        await pilot.press("2")
        clusters = app.main_screen.query_one("#clusters-table", EndpointTable)
        await settle(pilot, lambda: clusters.loaded and len(clusters.rows) == 3)

        await pilot.press("t")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Stop cluster dev-a100?" in app.screen.question
        await pilot.press("n")
        assert fake_daemon.fake.state.cluster_actions == []

        await pilot.press("down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Tear down cluster sweeps?" in app.screen.question
        await pilot.press("y")
        await settle(pilot, lambda: fake_daemon.fake.state.cluster_actions == [("down", "sweeps")])
        await settle(pilot, lambda: clusters.rows[1]["state"] == "DOWN")


def test_offers_merge_into_one_row_per_accelerator_and_cloud_cheapest_first() -> None:
    on_demand = [
        {
            "key": "aws/r//p4",
            "cloud": "aws",
            "region": "r",
            "zone": "",
            "accelerator_name": "A100",
            "accelerator_count": 1,
            "price": 4.0,
            "spot_price": None,
        },
        {
            "key": "gcp/r//a2",
            "cloud": "gcp",
            "region": "r",
            "zone": "",
            "accelerator_name": "A100",
            "accelerator_count": 1,
            "price": 3.0,
            "spot_price": 1.0,
        },
    ]
    spot = [
        {
            "key": "aws/r/z/p4",
            "cloud": "aws",
            "region": "r",
            "zone": "z",
            "accelerator_name": "A100",
            "accelerator_count": 1,
            "price": 4.0,
            "spot_price": 0.5,
        },
    ]
    rows = merge_offers(on_demand, spot, {"aws/r/z/p4": False})
    assert [(r["cloud"], r["od_price"], r["spot_price"], r["avail"]) for r in rows] == [
        ("aws", 4.0, 0.5, False),  # cheapest at all (spot) first
        ("gcp", 3.0, None, None),
    ]
    assert rows[0]["key"] == "aws/r/z/p4" and rows[0]["spot_where"] == "r/z"
    assert rows[1]["key"] == "gcp/r//a2"


def test_availability_is_read_from_market_events_only() -> None:
    event = {"kind": "market", "data": {"scope": "k", "what": "availability", "new": 0.0}}
    assert availability_change(event) == ("k", False)
    price = {"kind": "market", "data": {"scope": "k", "what": "spot_price", "new": 1.0}}
    assert availability_change(price) is None
    assert availability_change({"kind": "state", "data": {}}) is None


def test_clusters_say_how_long_they_are_up_and_idle_and_their_autostop() -> None:
    up = {
        "name": "a",
        "state": "UP",
        "cloud": "aws",
        "region": "r",
        "up_at": T0,
        "idle_since": T0 + 60,
        "ended_at": None,
        "autostop.idle_minutes": 30,
        "autostop.down": True,
        "active_jobs": [1, 2],
    }
    stopped = {**up, "state": "STOPPED", "autostop.idle_minutes": None}
    rows = cluster_rows([up, stopped, {"name": "other shape"}], T0 + 600)
    assert rows[0]["up_seconds"] == 600 and rows[0]["idle_seconds"] == 540
    assert rows[0]["autostop"] == "30m → down" and rows[0]["jobs"] == 2
    assert rows[0]["where"] == "aws/r"
    assert rows[1]["up_seconds"] is None and rows[1]["autostop"] == "off"
    assert rows[2] == {"name": "other shape"}


def test_captions_and_history_lines() -> None:
    assert costs_caption({"rows": [], "total": 15.75}) == "total $15.75"
    assert costs_caption([]) is None
    assert credits_caption({"cash": {"spent": 10, "burn_per_hour": 0.25}}) == (
        "cash (no pool): spent $10.00, burning $0.25/h"
    )
    assert credits_caption({"pools": []}) is None
    series, line = history_summary(
        "k",
        {
            "history": [
                {"at": 1, "spot_price": 2.0, "available": True},
                {"at": 2, "spot_price": None, "available": False},
                {"at": 3, "spot_price": 1.0, "available": False},
            ]
        },
    )
    assert series == [2.0, 1.0]
    assert line == "$1.00–$2.00, now $1.00 (2 prices) · NOT available · k"
    assert history_summary("k", {"history": []}) == ([], "no recorded prices yet for k")


async def test_market_changes_can_be_hidden_from_the_event_log(
    fake_daemon: FakeDaemonThread,
) -> None:
    app = SkydDashboard(fake_daemon.socket_path, clock=VirtualClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        events = app.main_screen.query_one("#events-pane", EventsPane)
        await settle(pilot, lambda: events.received == 6)
        fake_daemon.call(
            fake_daemon.fake.publish,
            None,
            "market",
            at=T0 + 3000,
            reason="spot_price of gcp/x changed from 1.0 to 1.2",
        )
        await settle(pilot, lambda: events.received == 7)
        await pilot.press("5")
        await settle(pilot, lambda: len(events.lines) == 7)
        await pilot.press("m")
        assert len(events.lines) == 6
        assert not any("spot_price" in line.text for line in events.lines)
        await pilot.press("m")
        assert len(events.lines) == 7

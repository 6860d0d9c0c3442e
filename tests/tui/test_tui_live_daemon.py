"""The dashboard against a real skyd (local provider) on a temporary socket, driven by Textual's
pilot: jobs appear and change state from the event stream, logs show, cancel works, and the
app reconnects by itself across a daemon restart."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Log

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests
from tests.tui.tui_harness import settle
from tui.app import SkydDashboard
from tui.confirm import ConfirmScreen
from tui.job_detail import JobDetailScreen
from tui.live_feed import Connected, Disconnected
from tui.status_bar import StatusBar


def shown_state(app: SkydDashboard, job_id: int) -> str | None:
    """The state as the row on screen shows it (None while there is no row)."""
    return app.jobs_pane.table.cell_text(job_id, "state")


def status_text(app: SkydDashboard) -> str:
    return str(app.query_one("#status", StatusBar).render())


async def test_a_submitted_job_appears_runs_shows_logs_and_cancels(
    daemon: DaemonThread, client: DaemonClient
) -> None:
    app = SkydDashboard(daemon.socket_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: isinstance(app.status, Connected))
        assert "connected" in status_text(app)
        assert app.jobs_pane.table.row_count == 0

        job = client.submit_command(
            ["sh", "-c", "echo hello-from-the-job; sleep 60"], "/tmp", "tui-live"
        )
        job_id = int(job["id"])
        seen: list[str] = []

        def running() -> bool:
            state = shown_state(app, job_id)
            if state and (not seen or seen[-1] != state):
                seen.append(state)
            return state == "RUNNING"

        await settle(pilot, running)
        # the row was created from the stream and moved on without anyone asking for the list
        assert seen[-1] == "RUNNING"
        assert app.jobs_pane.table.cell_text(job_id, "name") == "tui-live"
        # the fetch that follows the event fills in what events do not carry
        await settle(
            pilot, lambda: "local" in (app.jobs_pane.table.cell_text(job_id, "placement") or "")
        )

        await pilot.press("enter")
        assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == job_id
        log = app.screen.query_one("#job-log", Log)
        await settle(pilot, lambda: any("hello-from-the-job" in line for line in log.lines))
        timeline = app.screen.query_one("#job-timeline", DataTable)
        assert timeline.row_count >= 4  # submitted, provisioning, setting up, running

        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # changing one's mind leaves the job alone
        assert isinstance(app.screen, JobDetailScreen)
        assert client.get_job(job_id)["state"] == "RUNNING"

        await pilot.press("c")
        await pilot.press("y")
        await settle(pilot, lambda: client.get_job(job_id)["state"] == "CANCELLED")
        await settle(
            pilot, lambda: "CANCELLED" in str(app.screen.query_one("#job-summary").render())
        )
        await pilot.press("escape")
        await settle(pilot, lambda: shown_state(app, job_id) == "CANCELLED")


async def test_the_dashboard_reconnects_after_the_daemon_restarts(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    first = DaemonThread(settings).start()
    app = SkydDashboard(first.socket_path)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, lambda: isinstance(app.status, Connected))
            with DaemonClient(first.socket_path) as client:
                before = int(client.submit_command(["true"], "/tmp", "before")["id"])
            await settle(pilot, lambda: shown_state(app, before) == "SUCCEEDED")

            assert first.stop() == 0
            await settle(pilot, lambda: isinstance(app.status, Disconnected))
            assert "daemon unavailable" in status_text(app)
            assert "reconnecting" in status_text(app)

            second = DaemonThread(settings_for_tests(tmp_path)).start()
            try:
                await settle(pilot, lambda: isinstance(app.status, Connected))
                assert isinstance(app.status, Connected) and app.status.reconnected
                assert "reconnected" in status_text(app)
                with DaemonClient(second.socket_path) as client:
                    after = int(client.submit_command(["true"], "/tmp", "after")["id"])
                await settle(pilot, lambda: shown_state(app, after) == "SUCCEEDED")
                # what happened before the restart is still on screen
                assert shown_state(app, before) == "SUCCEEDED"
            finally:
                assert second.stop() == 0
    finally:
        first.stop()

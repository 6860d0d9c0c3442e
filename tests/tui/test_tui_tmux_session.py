"""A person's session in a real terminal: the dashboard runs in tmux at 80x24 against a real
daemon, driven with send-keys and read with capture-pane. Skips when tmux is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

REPO = Path(__file__).resolve().parents[2]


class TmuxTerminal:
    """One tmux server of our own (its own socket), so no user's sessions are touched."""

    def __init__(self, server: str) -> None:
        self.server = server

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=20
        )
        return result.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        settings = [f"{k}={v}" for k, v in env.items()]
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "dash",
            "-x",
            "80",
            "-y",
            "24",
            "env",
            *settings,
            *command,
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "dash")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "dash", *keys)

    def shows(self, *texts: str) -> str | None:
        screen = self.screen()
        return screen if all(t in screen for t in texts) else None

    def wait_for(self, *texts: str, timeout: float = 10.0) -> None:
        """Until the screen shows every text; a failure shows the screen as it was."""
        try:
            wait_until(lambda: self.shows(*texts), timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"never saw {texts} on screen:\n{self.screen()}") from None

    def running(self) -> bool:
        return "dash" in self.tmux("list-sessions", "-F", "#{session_name}")

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[TmuxTerminal]:
    term = TmuxTerminal(f"skyd-tui-test-{os.getpid()}")
    yield term
    term.close()


def test_a_session_in_tmux(
    daemon: DaemonThread, client: DaemonClient, terminal: TmuxTerminal
) -> None:
    job = client.submit_command(["sh", "-c", "echo tmux-was-here; sleep 60"], "/tmp", "in-tmux")
    job_id = int(job["id"])
    terminal.start(
        [sys.executable, "-m", "tui", "--socket", daemon.socket_path],
        {"PYTHONPATH": str(REPO), "TERM": "xterm-256color", "TZ": "UTC"},
    )
    # the tabs fit in 80 columns, and the footer names the keys
    terminal.wait_for("connected", "in-tmux", "RUNNING", "5 Events", "Cancel job", timeout=30)

    terminal.keys("Enter")
    terminal.wait_for("tmux-was-here", "setup finished", timeout=30)

    terminal.keys("c")
    terminal.wait_for(f"Cancel job {job_id} (in-tmux)?", timeout=10)
    terminal.keys("y")
    terminal.wait_for("CANCELLED", timeout=30)
    assert client.get_job(job_id)["state"] == "CANCELLED"

    # an Escape sent together with the next key would read as Alt+key: wait for its effect
    terminal.keys("Escape")
    terminal.wait_for("1/1 jobs", "CANCELLED", timeout=10)
    terminal.keys("5")
    terminal.wait_for("time     job   event        state         why", timeout=10)
    terminal.wait_for(f"#{job_id:<4} state        CANCELLED     cancelled by", timeout=10)
    # focus follows the number keys: back on the jobs tab its keys work at once
    terminal.keys("1")
    terminal.wait_for("Cancel job", timeout=10)
    terminal.keys("s")
    terminal.wait_for("sort: name", timeout=10)
    terminal.keys("?")
    terminal.wait_for("Page down", "Filter", timeout=10)

    terminal.keys("q")
    wait_until(lambda: not terminal.running(), timeout=10)

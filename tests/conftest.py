"""Shared fixtures: real daemons on temporary sockets and state directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests

REPO = Path(__file__).resolve().parents[1]

# fixtures shared by test directories, kept with the fakes they set up
pytest_plugins = ["skyd.testing.ec2_fixtures"]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonThread]:
    running = DaemonThread(settings_for_tests(tmp_path)).start()
    yield running
    assert running.stop() == 0


@pytest.fixture
def client(daemon: DaemonThread) -> Iterator[DaemonClient]:
    with DaemonClient(daemon.socket_path) as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI (SKYD_FAIL_ON_SKIP=1) a skip is a failure: a test that skips does not exist."""
    outcome = yield
    if not os.environ.get("SKYD_FAIL_ON_SKIP"):
        return
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under SKYD_FAIL_ON_SKIP=1 (CI): {report.longrepr}"

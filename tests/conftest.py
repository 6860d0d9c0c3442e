"""Shared fixtures: real daemons on temporary sockets and state directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# Under pytest-xdist (./bootstrap test runs several workers) the tests that take the machine's
# one Slurm cluster run in one worker, one after another: they would take turns anyway
# (slurm_world.cluster_to_myself holds a file lock), and a worker blocked on that lock runs
# nothing else meanwhile.
SLURM_GROUP = "slurm-cluster"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(SLURM_GROUP))


# pytest-xdist's workers find COLUMNS=80 and LINES=24 in their environment, set or not in
# the run's own; skyctl takes a table's width from COLUMNS (100 without it and without a
# terminal), and the daemons and commands the tests start inherit it. Each worker gets the
# values the run was started with, so a test sees one environment however it is run.
TERMINAL_VARIABLES = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controller: hand the run's terminal variables to a worker."""
    node.workerinput["skyd_terminal_env"] = {
        name: os.environ.get(name) for name in TERMINAL_VARIABLES
    }


def pytest_configure(config: pytest.Config) -> None:
    run_env = getattr(config, "workerinput", {}).get("skyd_terminal_env")
    for name, value in (run_env or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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

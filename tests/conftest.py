"""Shared fixtures: real daemons on temporary sockets and state directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonThread, settings_for_tests

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonThread]:
    running = DaemonThread(settings_for_tests(tmp_path)).start()
    yield running
    assert running.stop() == 0


@pytest.fixture
def client(daemon: DaemonThread) -> Iterator[DaemonClient]:
    with DaemonClient(daemon.socket_path) as c:
        yield c

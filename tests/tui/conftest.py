"""Fixtures of the dashboard tests: a fake daemon with fixed data, and times in UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.testing.canned_daemon import FakeDaemonThread
from tests.tui.tui_harness import populated_fake


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen in UTC, whatever the machine's zone (snapshots must not depend on it)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[FakeDaemonThread]:
    running = FakeDaemonThread(populated_fake(), tmp_path / "fake.sock").start()
    yield running
    running.stop()
